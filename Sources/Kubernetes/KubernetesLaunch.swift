import Knob

/// What a Kubernetes trial is made of: its object's manifest (a Pod, a Job, a PyTorchJob, a Workflow…)
/// with the trial's parameters substituted (knob's labels and environment not yet added).
public struct KubernetesLaunch: Sendable {
    public var manifest: SpecValue
    /// The namespace from the manifest, the experiment, or `nil` for the cluster configuration's.
    public var namespace: String?
    /// The container whose log is scraped and whose exit decides the trial (`nil`: the first).
    public var primaryContainerName: String?
    /// Keep the Pod or Job after the trial ends.
    public var retain: Bool
    /// How the trial's metrics are collected: a File, TensorFlowEvent or Custom collector runs as a sidecar.
    public var collector: MetricsCollectorSpec
    /// The metrics the collector reads (the objective's and the additional ones).
    public var metricNames: [String]
    /// When the trial has ended (its conditions, Katib's defaults for the kind where the template gives none)
    /// and which of its pods have the log to read.
    public var ending: TrialSpecShape.Ending

    public init(manifest: SpecValue, namespace: String?, primaryContainerName: String?, retain: Bool,
                collector: MetricsCollectorSpec = .stdOut, metricNames: [String] = [], ending: TrialSpecShape.Ending? = nil) {
        self.manifest = manifest
        self.namespace = namespace
        self.primaryContainerName = primaryContainerName
        self.retain = retain
        self.collector = collector
        self.metricNames = metricNames
        self.ending = ending ?? TrialSpecShape.Ending(kind: manifest["kind"]?.scalarText ?? "", successCondition: nil, failureCondition: nil,
                                                      primaryPodLabels: nil)
    }

    /// A trial of `spec` with these trial-parameter values: `nil` when the template has no trialSpec.
    /// The namespace is the manifest's own, else the experiment's.
    public init?(spec: ExperimentSpec, values: [String: String]) {
        guard let manifest = spec.trialTemplate.trialSpec?.rendered(values) else { return nil }
        let own: String? = if case .scalar(let text, _, _)? = manifest["metadata"]?["namespace"] { text } else { nil }
        let template = spec.trialTemplate
        self.init(manifest: manifest, namespace: own ?? spec.namespace, primaryContainerName: template.primaryContainerName,
                  retain: template.retain, collector: spec.metricsCollector, metricNames: spec.metricNames,
                  ending: TrialSpecShape.Ending(kind: manifest["kind"]?.scalarText ?? "", successCondition: template.successCondition,
                                                failureCondition: template.failureCondition, primaryPodLabels: template.primaryPodLabels))
    }
}

extension KubernetesLaunch {
    /// The trial's object as its launch describes it: the experiment's trialSpec with the trial's values; `nil` for a trial that runs a command.
    public init?(_ launch: TrialLaunch) {
        guard let spec = launch.spec, spec.runsOnKubernetes else { return nil }
        self.init(spec: spec, values: launch.values)
    }
}
