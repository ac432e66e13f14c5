import Foundation
import Knob

/// The object knob creates for one trial: the template's object (a Pod, a Job, a PyTorchJob, an Argo
/// Workflow…) with the trial's name, its namespace, knob's and Katib's labels on it and on every pod
/// template inside it, and the trial's name in the primary container's environment. With an artifacts
/// claim, the primary container also gets the trial's folder of that PersistentVolumeClaim at
/// `/knob/artifacts`, as `KNOB_ARTIFACTS_DIR`.
public struct TrialManifest: @unchecked Sendable {
    /// The object's kind and where it lives in the API.
    public var resource: KubeResource
    public var kind: String { resource.kind }
    public var name: String
    public var namespace: String
    /// The container whose exit decides a Pod's or a Job's trial, and whose log is read.
    public var primaryContainer: String
    /// The container whose log is scraped: the primary one, or the metrics collector's sidecar.
    public var logContainer: String
    public var object: JSONObject
    /// When the trial has ended, and the pods whose log is read.
    public var ending: TrialSpecShape.Ending
    /// Kept after the trial ends (`retain: true`).
    public var retain: Bool
    /// Its pods carry the trial's labels: the object has pod templates, which knob labelled (a controller that makes
    /// pods from templates of its own, as Argo does, gives them its labels only).
    public var podsCarryLabels: Bool

    /// Labels on the object (and on a Job's pods) that find a trial's pods again.
    public static func labels(experiment: String, trial: String) -> [String: String] {
        [
            "knob.dev/experiment": experiment, "knob.dev/trial": trial,
            "katib.kubeflow.org/experiment": experiment, "katib.kubeflow.org/trial": trial,
        ]
    }

    /// The label selector of a trial's objects: its name, and its uid when it has one (an experiment
    /// deleted and created again has trials of the same names).
    public static func selector(trial: String, uid: String = "") -> String {
        uid.isEmpty ? "knob.dev/trial=\(trial)" : "knob.dev/trial=\(trial),knob.dev/trial-uid=\(uid)"
    }

    /// Where the primary container finds its artifacts folder when knob is given an artifacts claim.
    public static let artifactsMountPath = "/knob/artifacts"
    /// The volume's name in the pod.
    static let artifactsVolume = "knob-artifacts"

    /// A Kubernetes object name of the DNS-subdomain kind (a PersistentVolumeClaim's).
    public static func isDNSSubdomain(_ name: String) -> Bool { Knob.isDNSSubdomain(name) }

    /// The name of the sidecar that runs a File or TensorFlowEvent collector, and of the volume it shares with the trial.
    public static let collectorContainer = "knob-metrics-collector"
    static let metricsVolume = "knob-metrics"

    /// What a File collector's sidecar runs (POSIX sh, with stat, tail and head, as busybox has them): it prints
    /// the file's new bytes as they come, from the file's start again when it shrinks, and once more when
    /// stopped (the kubelet stops a sidecar when the trial's containers have ended), then says if the file never
    /// appeared. `$1` is the file.
    static let fileCollectorScript = """
        path=$1; offset=0; stopping=
        trap 'stopping=1' TERM INT
        while :; do
          last=$stopping
          if [ -f "$path" ]; then
            size=$(stat -c %s "$path" 2>/dev/null) || size=$offset
            if [ "$size" -lt "$offset" ]; then offset=0; fi
            if [ "$size" -gt "$offset" ]; then
              tail -c +$((offset + 1)) "$path" | head -c $((size - offset))
              offset=$size
            fi
          fi
          if [ -n "$last" ]; then break; fi
          sleep 0.2
        done
        if [ ! -f "$path" ]; then echo "knob-metrics-collector: $path was never created" >&2; fi
        """

    /// `resource` is the kind's place in the API, as discovery found it (a guess when not given: for showing the object).
    /// `kubernetes` is the trial's object as its launch describes it unless given.
    public init(_ launch: TrialLaunch, kubernetes given: KubernetesLaunch? = nil, defaultNamespace: String, artifactsClaim: String? = nil,
                options: KubernetesOptions = KubernetesOptions(), resource: KubeResource? = nil) throws(ManifestError) {
        guard let kubernetes = given ?? KubernetesLaunch(launch) else { throw ManifestError("the trial template has no trialSpec") }
        guard var object = kubernetes.manifest.jsonObject as? JSONObject else {
            throw ManifestError("spec.trialTemplate.trialSpec must be a mapping (a Kubernetes object such as a Job)")
        }
        // A spec stored before these checks were part of validation meets them here.
        if let problem = TrialSpecShape.problems(kubernetes.manifest, primaryContainerName: kubernetes.primaryContainerName,
                                                 ending: kubernetes.ending).first {
            throw ManifestError("spec.trialTemplate.\(problem.path): \(problem.message)")
        }
        let apiVersion = object["apiVersion"] as? String ?? ""
        let kindName = object["kind"] as? String ?? ""
        self.resource = resource ?? KubeResource.guess(apiVersion: apiVersion, kind: kindName)
        ending = kubernetes.ending
        retain = kubernetes.retain
        name = launch.trialName
        namespace = kubernetes.namespace ?? defaultNamespace
        var labels = Self.labels(experiment: launch.experimentName, trial: launch.trialName)
        if !launch.trialUID.isEmpty { labels["knob.dev/trial-uid"] = launch.trialUID }

        var metadata = object["metadata"] as? JSONObject ?? [:]
        metadata["name"] = name
        metadata["namespace"] = namespace
        metadata.removeValue(forKey: "generateName")
        metadata["labels"] = (metadata["labels"] as? JSONObject ?? [:]).merging(labels) { _, ours in ours }
        object["metadata"] = metadata

        let templates = TrialSpecShape.podTemplates(in: object)
        podsCarryLabels = !templates.isEmpty
        // The primary container: the template's choice, else the first container of the first pod template.
        let primary = kubernetes.primaryContainerName ?? templates.first.flatMap { path in
            (((Self.value(at: path, in: object) as? JSONObject)?["spec"] as? JSONObject)?["containers"] as? [JSONObject])?.first?["name"] as? String
        } ?? ""
        let sidecar = try Self.collectorSidecar(kubernetes, options: options)
        if sidecar != nil, templates.isEmpty {
            throw ManifestError("spec.metricsCollectorSpec.collector.kind: a \(kubernetes.collector.kind.rawValue) collector runs in a container "
                                + "beside the trial's, and a \(kindName)'s trialSpec has no pod template knob can add it to; print the metrics "
                                + "to standard output (StdOut) or push them (Push)")
        }
        let native = TrialSpecShape.Ending.nativeKinds.contains(kindName)
        func decorate(podSpec: inout JSONObject, at path: String) throws(ManifestError) {
            guard var containers = podSpec["containers"] as? [JSONObject], !containers.isEmpty else {
                throw ManifestError("spec.trialTemplate.trialSpec.\(path).containers: the trial needs at least one container")
            }
            // Every pod template with the primary container gets knob's environment (a PyTorchJob's master and workers).
            guard let index = containers.firstIndex(where: { $0["name"] as? String == primary }) else { return }
            let added = ["KNOB_EXPERIMENT": launch.experimentName, "KNOB_TRIAL": launch.trialName, "KATIB_TRIAL_NAME": launch.trialName]
                .merging(launch.push?.environment ?? [:]) { _, new in new }
            var env = (containers[index]["env"] as? [JSONObject] ?? []).filter { added[$0["name"] as? String ?? ""] == nil }
            env += added.sorted { $0.key < $1.key }.map { ["name": $0.key, "value": $0.value] }
            if let claim = artifactsClaim {
                var volumes = podSpec["volumes"] as? [JSONObject] ?? []
                if volumes.contains(where: { $0["name"] as? String == Self.artifactsVolume }) {
                    throw ManifestError("spec.trialTemplate.trialSpec.\(path).volumes: the name \(Self.artifactsVolume) is taken by knob's "
                                        + "artifacts volume (--artifacts-claim); rename that volume")
                }
                volumes.append(["name": Self.artifactsVolume, "persistentVolumeClaim": ["claimName": claim]])
                podSpec["volumes"] = volumes
                var mounts = containers[index]["volumeMounts"] as? [JSONObject] ?? []
                mounts.append(["name": Self.artifactsVolume, "mountPath": Self.artifactsMountPath,
                               "subPath": "\(launch.experimentName)/\(launch.trialName)/artifacts"])
                containers[index]["volumeMounts"] = mounts
                env = env.filter { $0["name"] as? String != "KNOB_ARTIFACTS_DIR" }
                env.append(["name": "KNOB_ARTIFACTS_DIR", "value": Self.artifactsMountPath])
            }
            containers[index]["env"] = env
            if let sidecar {
                try Self.add(sidecar, folder: kubernetes.collector.sharedFolder, primary: &containers[index], to: &podSpec, at: path)
            }
            podSpec["containers"] = containers
            guard native else { return }  // a controller sets its pods' restart policy (a PyTorchJob's from its replicas')
            // A Pod's default policy (Always) would run a finished trial again, forever.
            if podSpec["restartPolicy"] == nil { podSpec["restartPolicy"] = "Never" }
            if podSpec["restartPolicy"] as? String == "Always" {
                throw ManifestError("spec.trialTemplate.trialSpec.\(path).restartPolicy: Always would run the trial again each time it ends; "
                                    + "use Never (or OnFailure)")
            }
        }

        var decorated: Any = object
        for path in templates {
            var template = Self.value(at: path, in: decorated) as? JSONObject ?? [:]
            if !path.isEmpty {
                var templateMetadata = template["metadata"] as? JSONObject ?? [:]
                templateMetadata["labels"] = (templateMetadata["labels"] as? JSONObject ?? [:]).merging(labels) { _, ours in ours }
                template["metadata"] = templateMetadata
            }
            var podSpec = template["spec"] as? JSONObject ?? [:]
            try decorate(podSpec: &podSpec, at: TrialSpecShape.text(path + [.key("spec")]))
            template["spec"] = podSpec
            decorated = Self.replacing(at: path[...], in: decorated, with: template)
        }
        self.object = decorated as? JSONObject ?? object
        primaryContainer = primary
        logContainer = (sidecar?["name"] as? String) ?? primary
    }

    /// The value at `path` in `json`.
    static func value(at path: [TrialSpecShape.Step], in json: Any) -> Any? {
        var value: Any? = json
        for step in path {
            switch step {
            case .key(let key): value = (value as? JSONObject)?[key]
            case .index(let index): value = (value as? [Any]).flatMap { index < $0.count ? $0[index] : nil }
            }
        }
        return value
    }

    /// `json` with the value at `path` replaced by `new`.
    static func replacing(at path: ArraySlice<TrialSpecShape.Step>, in json: Any, with new: Any) -> Any {
        guard let step = path.first else { return new }
        switch step {
        case .key(let key):
            guard var mapping = json as? JSONObject, let inner = mapping[key] else { return json }
            mapping[key] = replacing(at: path.dropFirst(), in: inner, with: new)
            return mapping
        case .index(let index):
            guard var items = json as? [Any], index < items.count else { return json }
            items[index] = replacing(at: path.dropFirst(), in: items[index], with: new)
            return items
        }
    }

    /// The collector's container for a File, TensorFlowEvent or Custom collector: a native sidecar (an init
    /// container that runs beside the trial's, `restartPolicy: Always`), so a Job completes when its trial does.
    static func collectorSidecar(_ kubernetes: KubernetesLaunch, options: KubernetesOptions) throws(ManifestError) -> JSONObject? {
        let collector = kubernetes.collector
        let mounts: [JSONObject] = collector.sharedFolder.map { [["name": metricsVolume, "mountPath": $0]] } ?? []
        switch collector.kind {
        case .stdOut, .push:
            return nil
        case .file:
            guard let path = collector.path else { return nil }
            return ["name": collectorContainer, "image": options.metricsCollectorImage, "restartPolicy": "Always",
                    "command": ["sh", "-c", fileCollectorScript, collectorContainer, path], "volumeMounts": mounts]
        case .tensorFlowEvent:
            guard let path = collector.path else { return nil }
            guard let image = options.tfEventCollectorImage else {
                throw ManifestError("spec.metricsCollectorSpec.collector.kind: a TensorFlowEvent collector on Kubernetes runs `knob collect tfevents` "
                                    + "in a sidecar: start knobd (or knob run) with --tfevent-collector-image IMAGE, an image with knob in it "
                                    + "(examples/Dockerfile.knob builds one)")
            }
            return ["name": collectorContainer, "image": image, "restartPolicy": "Always",
                    "command": ["knob", "collect", "tfevents", path, "--follow", "-o", "json"] + kubernetes.metricNames.flatMap { ["--metric", $0] },
                    "volumeMounts": mounts]
        case .custom:
            guard var container = collector.customCollector?.jsonObject as? JSONObject else {
                throw ManifestError("spec.metricsCollectorSpec.collector.customCollector: a Custom collector needs its container")
            }
            container["restartPolicy"] = "Always"
            container["volumeMounts"] = (container["volumeMounts"] as? [JSONObject] ?? []) + mounts
            return container
        }
    }

    /// Adds the collector's sidecar to a pod spec, with the emptyDir volume it shares with the primary container.
    private static func add(_ sidecar: JSONObject, folder: String?, primary: inout JSONObject, to podSpec: inout JSONObject,
                            at path: String) throws(ManifestError) {
        var initContainers = podSpec["initContainers"] as? [JSONObject] ?? []
        let name = sidecar["name"] as? String ?? ""
        let taken = ((podSpec["containers"] as? [JSONObject] ?? []) + initContainers).contains { $0["name"] as? String == name }
        if taken {
            throw ManifestError("spec.trialTemplate.trialSpec.\(path): a container is named \(name), as the metrics collector's is; rename it")
        }
        initContainers.append(sidecar)
        podSpec["initContainers"] = initContainers
        guard let folder else { return }
        var volumes = podSpec["volumes"] as? [JSONObject] ?? []
        if volumes.contains(where: { $0["name"] as? String == metricsVolume }) {
            throw ManifestError("spec.trialTemplate.trialSpec.\(path).volumes: the name \(metricsVolume) is taken by the metrics collector's volume; "
                                + "rename that volume")
        }
        volumes.append(["name": metricsVolume, "emptyDir": JSONObject()])
        podSpec["volumes"] = volumes
        var mounts = primary["volumeMounts"] as? [JSONObject] ?? []
        if let clash = mounts.first(where: { $0["mountPath"] as? String == folder }) {
            throw ManifestError("spec.trialTemplate.trialSpec.\(path).containers: \(folder) is where the metrics collector shares the trial's "
                                + "metrics folder, and volume \(clash["name"] as? String ?? "") is mounted there too; write the metrics elsewhere")
        }
        mounts.append(["name": metricsVolume, "mountPath": folder])
        primary["volumeMounts"] = mounts
    }

    var collectionPath: String { resource.collection(namespace) }
    var objectPath: String { resource.object(namespace, name) }
}

public struct ManifestError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
