import KnobAlgorithms
import Foundation
import Store
import Synchronization

/// What the controller tells whoever watches it (the CLI prints these).
public enum ControllerEvent: Sendable {
    /// An earlier process left trials running (now followed again) or not yet started (started now).
    case resumed(adopted: Int, pending: Int)
    case trialStarted(TrialRecord)
    /// A started trial is not running yet, for this reason (a pod that cannot be scheduled…).
    case trialWaiting(TrialRecord, reason: String)
    /// A trial ended; `best` is the experiment's best trial after it.
    case trialEnded(TrialRecord, best: TrialRecord?, completed: Int)
    case stopping(String)
}

/// Drives one experiment to its end: keeps `parallelTrialCount` trials running, records every
/// result, and ends the experiment on its goal, its budget, its failures, an exhausted space, or
/// a stop request. The decisions are `ExperimentPolicy`'s; this is the I/O around them.
public struct ExperimentController: Sendable {
    public let store: Store
    public let home: KnobHome
    public private(set) var spec: ExperimentSpec
    public let runner: any TrialRunner
    public let stop: StopSignal
    public var grace: Duration = .seconds(5)
    /// Budget edits applied while the experiment runs (the daemon's PATCH).
    public let budget: LiveBudget?
    /// Told of each suggestion and each batch of output read (knobd's `/metrics`).
    public var observer: EngineObserver = .none
    /// The most trials run at once, whatever a spec stored before this limit existed asks.
    public var maxParallelTrialCount = SpecLimits.default.maxParallelTrialCount
    /// Called once the start is over: trials left by an earlier process adopted and the first
    /// new ones scheduled (or the experiment ended or was detached before that).
    public var onStarted: (@Sendable () async -> Void)?
    /// Where the trials of a Push experiment send their reports (`KNOB_PUSH_URL`).
    public var pushURL: String?
    /// Called with the history each suggestion is made from (tests compare it with the store's).
    var onSuggest: (@Sendable (History) async -> Void)?
    /// Called each time the loop looks at the experiment (tests check that an idle one does not).
    var onDecide: (@Sendable () -> Void)?
    let onEvent: @Sendable (ControllerEvent) -> Void

    public init(store: Store, home: KnobHome, spec: ExperimentSpec, runner: any TrialRunner, stop: StopSignal,
                budget: LiveBudget? = nil, onEvent: @escaping @Sendable (ControllerEvent) -> Void = { _ in }) {
        self.store = store
        self.home = home
        self.spec = spec
        self.runner = runner
        self.stop = stop
        self.budget = budget
        self.onEvent = onEvent
    }

    /// Runs the experiment until it ends and returns its final record.
    public func run(_ experiment: ExperimentRecord) async throws -> ExperimentRecord {
        guard spec.trialTemplate.command != nil || spec.runsOnKubernetes else { throw KnobError.needsCommand(spec.name) }
        // What only the runner knows (the cluster's kinds, a ConfigMap's template) is checked first.
        var prepared = self
        prepared.spec = try await runner.prepare(spec, specText: experiment.specText)
        return try await prepared.runPrepared(experiment)
    }

    private func runPrepared(_ experiment: ExperimentRecord) async throws -> ExperimentRecord {
        guard let experimentId = experiment.id else { return experiment }
        let suggester: any Suggester
        do {
            suggester = try SuggesterRegistry.make(spec.algorithm.algorithmName, context: SuggesterContext(
                space: spec.searchSpace, settings: spec.algorithm.settingsByName, seed: UInt64(bitPattern: experiment.seed),
                stateStore: SuggesterStateFolder(path: home.stateDirectory(experiment: experiment.name))))
        } catch {
            throw KnobError.suggester("\(error)")
        }
        if spec.metricsCollector.kind == .push, pushURL == nil {
            throw KnobError.pushUnreachable(name: spec.name, kubernetes: spec.runsOnKubernetes)
        }
        var collector = spec.metricsCollector
        // Pushed reports are kept as JSON lines.
        if collector.kind == .push { collector.format = .json }
        let scraper = try MetricsScraper(metricNames: spec.metricNames, collector: collector)

        // An earlier run on the same signal may have stopped its trials; this one starts afresh.
        stop.resetTrialStop()
        try await store.markExperimentRunning(experimentId)
        if spec.parallelTrialCount > maxParallelTrialCount {
            try await store.appendEvent(EventRecord(
                experimentId: experimentId, kind: "ParallelismLimited",
                message: "parallelTrialCount \(spec.parallelTrialCount) is above the limit of \(maxParallelTrialCount): "
                    + "at most \(maxParallelTrialCount) trials run at once (lower it with `knob edit \(experiment.name) --parallel N`)"))
        }
        let recovered = try await TrialRecovery(controller: self).recover(experiment)
        var policy = ExperimentPolicy(parallelTrialCount: Swift.min(spec.parallelTrialCount, maxParallelTrialCount),
                                      maxTrialCount: spec.maxTrialCount, failureLimit: spec.failureLimit)
        policy.created = recovered.created
        policy.ended = recovered.ended
        policy.goalReached = recovered.goalReached
        policy.running = recovered.adopted.count + recovered.pending.count

        // From here on the history and the objective curves are kept in memory, updated from what
        // this controller writes.
        let book = HistoryBook(try await store.trials(of: experimentId), space: spec.searchSpace, objective: spec.objective)
        let stopper: EarlyStopper?
        do {
            stopper = try await EarlyStopper.make(spec: spec, experimentId: experimentId, store: store)
        } catch let error as SuggesterError {
            throw KnobError.suggester("early stopping: \(error)")
        }
        let execution = TrialExecution(store: store, runner: runner, spec: spec, scraper: scraper, stop: stop, stopper: stopper,
                                       grace: grace, observer: observer) { [store, onEvent] trial, reason in
            onEvent(.trialWaiting(trial, reason: reason))
            Task { try? await store.appendEvent(EventRecord(experimentId: experimentId, kind: "TrialWaiting", trialName: trial.name, message: reason)) }
        }
        var loop = ControllerLoop(controller: self, experiment: experiment, suggester: suggester, execution: execution,
                                  stopper: stopper, policy: policy, book: book)
        guard case .finish(let status, let reason, let message)? = try await loop.drive(adopted: recovered.adopted, pending: recovered.pending) else {
            return try await store.requireExperiment(experiment.name)
        }
        try await store.finishExperiment(experimentId, status: status, reason: reason, message: message)
        return try await store.requireExperiment(experiment.name)
    }

    /// The trials as the store holds them, as the suggester sees them; objectives oriented so
    /// that lower is better.
    func history(_ experimentId: Int64, space: SearchSpace) async throws -> History {
        HistoryBook(try await store.trials(of: experimentId), space: space, objective: spec.objective).history
    }

    func launch(for trial: TrialRecord, experiment: ExperimentRecord) -> TrialLaunch {
        let template = spec.trialTemplate
        let assignment = Dictionary(trial.assignments.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        let values = TemplateRenderer.values(for: template, assignment: assignment, trialName: trial.name,
                                             namespace: spec.namespace ?? "default")
        let base = experiment.directory
        let trialDirectory = home.trialDirectory(experiment: experiment.name, trial: trial.name)
        // A token that cannot be made leaves the launch without one: its start fails and says why.
        let push = spec.metricsCollector.kind == .push ? pushURL.flatMap { url in
            (try? PushChannel(trialDirectory: trialDirectory).token()).map { PushCredentials(url: url, token: $0) }
        } : nil
        let workingDirectory = template.workingDir.map { TemplateRenderer.render($0, values: values) }
            .map { $0.hasPrefix("/") ? $0 : "\(base)/\($0)" } ?? base
        return TrialLaunch(
            experimentName: experiment.name, trialName: trial.name,
            argv: (template.command ?? []).map { TemplateRenderer.render($0, values: values) },
            workingDirectory: Self.standardized(workingDirectory),
            environment: template.env.mapValues { TemplateRenderer.render($0, values: values) },
            logPath: home.logPath(experiment: experiment.name, trial: trial.name),
            trialDirectory: trialDirectory,
            spec: spec, values: values,
            trialUID: "\(trial.id ?? 0)-\(Int64(trial.createdAt.timeIntervalSince1970 * 1000))", push: push)
    }

    /// The last folder standardized, and what it became: an experiment's trials start in the same folder, and
    /// standardizing a path looks at each of its components on disk.
    private static let lastStandardized = Mutex<(path: String, standardized: String)?>(nil)

    static func standardized(_ path: String) -> String {
        if let last = lastStandardized.withLock({ $0 }), last.path == path { return last.standardized }
        let standardized = (path as NSString).standardizingPath
        lastStandardized.withLock { $0 = (path, standardized) }
        return standardized
    }

    /// For a File collector: the metrics file; for TensorFlowEvent, the event files' folder (a relative
    /// path is inside the trial's folder); for Push, the file the pushed reports are appended to. Where the
    /// collector's files are not on this machine (a File, TensorFlowEvent or Custom collector in a pod's
    /// sidecar), the runner puts the collector's output in the trial's log.
    func metricsPath(_ launch: TrialLaunch) -> String? {
        if spec.metricsCollector.kind == .push { return PushChannel(trialDirectory: launch.trialDirectory).reportsPath }
        guard runner.collectorFilesAreLocal, spec.metricsCollector.kind != .stdOut, let path = spec.metricsCollector.path else { return nil }
        return path.hasPrefix("/") ? path : "\(launch.trialDirectory)/\(path)"
    }
}

extension SearchSpace {
    /// An assignment from the strings the store keeps.
    public func assignment(from stored: [ParameterAssignment]) -> Assignment {
        var values: [String: ParameterValue] = [:]
        for parameter in parameters {
            guard let text = stored.first(where: { $0.name == parameter.name })?.value else { continue }
            switch parameter.kind {
            case .double: values[parameter.name] = Double(text).map(ParameterValue.double) ?? .string(text)
            case .int: values[parameter.name] = Int(text).map(ParameterValue.int) ?? .string(text)
            case .discrete, .categorical: values[parameter.name] = .string(text)
            }
        }
        return Assignment(values)
    }
}

/// An experiment's budget, editable while it runs.
public final class LiveBudget: Sendable {
    private let value: Mutex<ExperimentView.Budget>

    public init(_ value: ExperimentView.Budget) {
        self.value = Mutex(value)
    }

    public var current: ExperimentView.Budget {
        value.withLock { $0 }
    }

    public func set(_ newValue: ExperimentView.Budget) {
        value.withLock { $0 = newValue }
        wakeup.wake()
    }

    /// Told of every edit, so that the controller applies it at once.
    let wakeup = Wakeup()
}
