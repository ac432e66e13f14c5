import ArgumentParser
import Kubernetes

/// Where experiments whose trials are Kubernetes Pods or Jobs run.
public struct KubernetesArguments: ParsableArguments {
    @Option(help: ArgumentHelp("The kubeconfig to use (default $KUBECONFIG, else ~/.kube/config, else the in-cluster service account).",
                               valueName: "file"))
    public var kubeconfig: String?

    @Option(help: ArgumentHelp("The kubeconfig context to use instead of its current-context.", valueName: "name"))
    public var context: String?

    @Option(help: ArgumentHelp("The namespace for trials when neither the experiment nor its trialSpec names one (default: the context's).",
                               valueName: "name"))
    public var namespace: String?

    @Option(help: ArgumentHelp("A PersistentVolumeClaim for the trials' artifacts: mounted in each trial's primary container at "
                               + "/knob/artifacts (its folder EXPERIMENT/TRIAL/artifacts) with KNOB_ARTIFACTS_DIR set. Mount the same "
                               + "claim at $KNOB_HOME/trials where knobd runs, and `knob artifacts` serves them.", valueName: "claim"))
    public var artifactsClaim: String?

    @Option(help: ArgumentHelp("The image of a File metrics collector's sidecar (a POSIX shell with stat, tail and head is all it runs).",
                               valueName: "image"))
    public var metricsCollectorImage: String = KubernetesOptions.defaultMetricsCollectorImage

    @Option(help: ArgumentHelp("The image of a TensorFlowEvent metrics collector's sidecar: one with knob in it (examples/Dockerfile.knob), "
                               + "which runs `knob collect tfevents`. Required for TensorFlowEvent collectors on Kubernetes.", valueName: "image"))
    public var tfeventCollectorImage: String?

    @Option(help: ArgumentHelp("Seconds a trial's pod may wait to start (image pull, scheduling) before the trial fails.", valueName: "seconds"))
    public var podPendingTimeout: Double = 300

    public init() {}

    public var options: KubernetesOptions {
        KubernetesOptions(kubeconfig: kubeconfig, context: context, namespace: namespace, artifactsClaim: artifactsClaim,
                          metricsCollectorImage: metricsCollectorImage, tfEventCollectorImage: tfeventCollectorImage)
    }

    public func validate() throws {
        if let claim = artifactsClaim, !TrialManifest.isDNSSubdomain(claim) {
            throw ValidationError("--artifacts-claim: \"\(claim)\" is not a PersistentVolumeClaim name (lowercase letters, digits, '-' and '.', at most 253)")
        }
        for (flag, image) in [("--metrics-collector-image", metricsCollectorImage), ("--tfevent-collector-image", tfeventCollectorImage ?? "x")]
        where image.isEmpty || image.contains(where: \.isWhitespace) {
            throw ValidationError("\(flag): \"\(image)\" is not an image reference")
        }
        guard podPendingTimeout > 0, podPendingTimeout <= 1e9 else { throw ValidationError("--pod-pending-timeout takes 0 to 1e9 seconds, found \(podPendingTimeout)") }
    }
}
