import KnobAlgorithms

/// A Katib `kubeflow.org/v1beta1` `Experiment`, as knob understands it, after validation.
public struct ExperimentSpec: Codable, Sendable, Hashable {
    public var name: String
    public var namespace: String?
    public var parameters: [ParameterSpec]
    public var objective: ObjectiveSpec
    public var algorithm: AlgorithmSpec
    public var parallelTrialCount: Int
    /// `nil`: no limit (the experiment runs until its goal, its space is exhausted, or it is stopped).
    public var maxTrialCount: Int?
    public var maxFailedTrialCount: Int?
    public var trialTemplate: TrialTemplateSpec
    public var metricsCollector: MetricsCollectorSpec
    /// `spec.earlyStopping`: the rule that stops hopeless trials while they run, if any.
    public var earlyStopping: EarlyStoppingSpec?

    /// The search space the suggesters see.
    public var searchSpace: SearchSpace {
        SearchSpace(parameters.map(\.parameter))
    }

    /// Every metric the scraper records: the objective first, then the additional ones.
    public var metricNames: [String] {
        [objective.objectiveMetricName] + objective.additionalMetricNames
    }

    /// Failures (Failed + MetricsUnavailable) at which the experiment fails.
    public var failureLimit: Int? {
        maxFailedTrialCount.map { Swift.max(1, $0) }
    }
}

/// One entry of `spec.parameters`.
public struct ParameterSpec: Codable, Sendable, Hashable {
    public var name: String
    public var parameter: Parameter
}

/// `spec.objective`.
public struct ObjectiveSpec: Codable, Sendable, Hashable {
    public enum Direction: String, Codable, Sendable, Hashable {
        case minimize, maximize
    }

    /// How a metric's reports reduce to the one value the optimizer sees.
    public enum Strategy: String, Codable, Sendable, Hashable {
        case min, max, latest
    }

    public var type: Direction
    public var goal: Double?
    public var objectiveMetricName: String
    public var additionalMetricNames: [String]
    /// Per metric; Katib's defaults filled in (objective: min or max by `type`; others: latest).
    public var metricStrategies: [String: Strategy]

    /// Whether `value` meets the goal.
    public func reachesGoal(_ value: Double) -> Bool {
        guard let goal else { return false }
        return type == .maximize ? value >= goal : value <= goal
    }

    /// Whether `a` is a better objective than `b`.
    public func isBetter(_ a: Double, than b: Double) -> Bool {
        type == .maximize ? a > b : a < b
    }
}

/// `spec.algorithm`.
public struct AlgorithmSpec: Codable, Sendable, Hashable {
    public var algorithmName: String
    /// `algorithmSettings`, in spec order.
    public var settings: [Setting]

    public struct Setting: Codable, Sendable, Hashable {
        public var name: String
        public var value: String
    }

    public var settingsByName: [String: String] {
        settings.byName
    }
}

extension [AlgorithmSpec.Setting] {
    /// Settings by name; a name given twice keeps its last value.
    var byName: [String: String] {
        Dictionary(map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
    }
}

/// `spec.earlyStopping`.
public struct EarlyStoppingSpec: Codable, Sendable, Hashable {
    public var algorithmName: String
    /// `algorithmSettings`, in spec order.
    public var settings: [AlgorithmSpec.Setting]

    public var settingsByName: [String: String] {
        settings.byName
    }
}

/// `spec.trialTemplate`, with knob's local-run extensions.
public struct TrialTemplateSpec: Codable, Sendable, Hashable {
    public struct TrialParameter: Codable, Sendable, Hashable {
        public var name: String
        public var reference: String
        public var description: String?
    }

    public var trialParameters: [TrialParameter]
    /// Local trials: the argv to run (no shell), `${trialParameters.X}` substituted in each argument.
    public var command: [String]?
    /// Local trials: the directory the command runs in (relative to the spec file's folder).
    public var workingDir: String?
    /// Local trials: extra environment.
    public var env: [String: String]
    /// Local trials: the wall-clock limit after which the trial's process group is killed.
    public var timeoutSeconds: Double?
    /// Kubernetes trials: the object each trial creates (a Pod, a Job, a PyTorchJob, an Argo Workflow…).
    public var trialSpec: SpecValue?
    public var primaryContainerName: String?
    public var retain: Bool
    /// Kubernetes trials: GJSON paths over the trial's object that say it succeeded or failed (Katib's
    /// defaults for Job and the training operator's kinds when the spec gives none; `nil` for a Pod).
    public var successCondition: String?
    public var failureCondition: String?
    /// Kubernetes trials: the labels of the pods whose log is read (a PyTorchJob's master); empty: every pod of the trial.
    public var primaryPodLabels: [String: String]?
    /// Kubernetes trials: the trialSpec is in a ConfigMap of the cluster, read when the experiment starts.
    public var configMap: ConfigMapSource?

    /// `trialTemplate.configMap`: where a template kept in the cluster is.
    public struct ConfigMapSource: Codable, Sendable, Hashable {
        public var configMapName: String
        public var configMapNamespace: String
        public var templatePath: String

        public var description: String { "ConfigMap \(configMapNamespace)/\(configMapName) (key \(templatePath))" }
    }

    /// Whether the trials are Kubernetes objects: a trialSpec, given or in a ConfigMap, and no command.
    public var runsOnKubernetes: Bool { command == nil && (trialSpec != nil || configMap != nil) }
}

/// `spec.metricsCollectorSpec`.
public struct MetricsCollectorSpec: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable, Hashable {
        case stdOut = "StdOut"
        case file = "File"
        /// TensorBoard event files in a folder (`source.fileSystemPath.path`).
        case tensorFlowEvent = "TensorFlowEvent"
        /// The user's own collector container beside a Kubernetes trial (`collector.customCollector`),
        /// whose standard output is read as a trial's is.
        case custom = "Custom"
        /// The trial sends its reports to knob's API (`report_metrics()`), with a token knob gives it.
        case push = "Push"
    }

    public enum Format: String, Codable, Sendable, Hashable {
        case text = "TEXT"
        case json = "JSON"
    }

    public var kind: Kind
    /// The metrics file for `File`; the event files' folder for `TensorFlowEvent`.
    public var path: String?
    public var format: Format
    /// Custom `metricsFormat` regexes; empty for Katib's default `name=value` format.
    public var metricsFormat: [String]
    /// `Custom`: the collector container (a Kubernetes `Container`), as the spec gives it.
    public var customCollector: SpecValue?
    /// `source.fileSystemPath.kind: Directory` (`path` is a folder; `TensorFlowEvent`'s always is).
    public var pathIsFolder: Bool?

    /// Kubernetes trials: the folder shared by the trial's container and the collector's (the file's folder,
    /// or the folder itself), if the collector reads a path.
    public var sharedFolder: String? {
        guard let path, kind != .stdOut, kind != .push else { return nil }
        if kind == .tensorFlowEvent || pathIsFolder == true { return path }
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    public static let stdOut = MetricsCollectorSpec(kind: .stdOut, path: nil, format: .text, metricsFormat: [])

    public init(kind: Kind, path: String?, format: Format, metricsFormat: [String], customCollector: SpecValue? = nil, pathIsFolder: Bool? = nil) {
        self.pathIsFolder = pathIsFolder
        self.kind = kind
        self.path = path
        self.format = format
        self.metricsFormat = metricsFormat
        self.customCollector = customCollector
    }
}
