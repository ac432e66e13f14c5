import KnobAlgorithms
import Foundation
import Store

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
    public let spec: ExperimentSpec
    public let runner: any TrialRunner
    public let stop: StopSignal
    public var grace: Duration = .seconds(5)
    /// Budget edits applied while the experiment runs (the daemon's PATCH).
    public let budget: LiveBudget?
    /// The most trials run at once, whatever a spec stored before this limit existed asks.
    public var maxParallelTrialCount = SpecLimits.default.maxParallelTrialCount
    /// Called once the start is over: trials left by an earlier process adopted and the first
    /// new ones scheduled (or the experiment ended or was detached before that).
    public var onStarted: (@Sendable () async -> Void)?
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

    /// What a child task of the controller reports: a trial's end, or that it is time to look
    /// at budget edits and stop requests again.
    enum ChildResult: Sendable {
        case ended(TrialRecord?)
        case tick
    }

    /// Runs the experiment until it ends and returns its final record.
    public func run(_ experiment: ExperimentRecord) async throws -> ExperimentRecord {
        guard spec.trialTemplate.command != nil || spec.trialTemplate.trialSpec != nil else { throw KnobError.needsCommand(spec.name) }
        guard let experimentId = experiment.id else { return experiment }
        let space = spec.searchSpace
        let suggester: any Suggester
        do {
            suggester = try SuggesterRegistry.make(spec.algorithm.algorithmName, context: SuggesterContext(
                space: space, settings: spec.algorithm.settingsByName, seed: UInt64(bitPattern: experiment.seed)))
        } catch {
            throw KnobError.suggester("\(error)")
        }
        let scraper = try MetricsScraper(metricNames: spec.metricNames, collector: spec.metricsCollector)

        // An earlier run on the same signal may have stopped its trials; this one starts afresh.
        stop.resetTrialStop()
        try await store.markExperimentRunning(experimentId)
        var policy = ExperimentPolicy(parallelTrialCount: Swift.min(spec.parallelTrialCount, maxParallelTrialCount),
                                      maxTrialCount: spec.maxTrialCount, failureLimit: spec.failureLimit)
        if spec.parallelTrialCount > maxParallelTrialCount {
            try await store.appendEvent(EventRecord(
                experimentId: experimentId, kind: "ParallelismLimited",
                message: "parallelTrialCount \(spec.parallelTrialCount) is above the limit of \(maxParallelTrialCount): "
                    + "at most \(maxParallelTrialCount) trials run at once (lower it with `knob edit \(experiment.name) --parallel N`)"))
        }
        // Trials an earlier process left unfinished: running ones are adopted (or recorded as
        // ended when they cannot be), pending ones are started now.
        var adopted: [(TrialRecord, any RunningTrial)] = []
        var pending: [TrialRecord] = []
        var ended: [[String: String]] = []
        for trial in try await store.trials(of: experimentId) {
            policy.created += 1
            switch trial.state {
            case .running:
                if let process = await runner.adopt(handle: trial.runnerHandle) {
                    adopted.append((trial, process))
                } else if let end = try await recover(trial) {
                    policy.ended[end.state, default: 0] += 1
                }
            case .pending:
                // Its starter may have died after starting it but before recording that.
                let launch = self.launch(for: trial, experiment: experiment)
                if let process = await runner.find(launch) {
                    try await store.markRunning(trial.id!, handle: process.handle, logPath: launch.logPath)
                    adopted.append((trial, process))
                } else {
                    pending.append(trial)
                }
            default:
                policy.ended[trial.state, default: 0] += 1
                if !trial.runnerHandle.isEmpty { ended.append(trial.runnerHandle) }
                if trial.state == .succeeded, let value = trial.objectiveValue, spec.objective.reachesGoal(value) { policy.goalReached = true }
            }
        }
        let swept = await runner.sweep(experiment: experiment.name, ended: ended)
        if swept > 0 {
            try await store.appendEvent(EventRecord(
                experimentId: experimentId, kind: "LeftoversRemoved",
                message: "removed \(swept) object(s) of ended trials that an earlier process had not removed"))
        }
        if !adopted.isEmpty || !pending.isEmpty {
            onEvent(.resumed(adopted: adopted.count, pending: pending.count))
            try await store.appendEvent(EventRecord(
                experimentId: experimentId, kind: "TrialsAdopted",
                message: "following again \(adopted.count) trial(s) left running by an earlier process; starting \(pending.count) that had not started"))
        }
        policy.running = adopted.count + pending.count
        // From here on the history is kept in memory, updated from what this controller writes.
        let known = try await store.trials(of: experimentId)
        var book = HistoryBook(known, space: space, objective: spec.objective)
        let stopper: EarlyStopper?
        do {
            stopper = try await EarlyStopper.make(spec: spec, experimentId: experimentId, store: store)
        } catch let error as SuggesterError {
            throw KnobError.suggester("early stopping: \(error)")
        }
        let execution = TrialExecution(store: store, runner: runner, spec: spec, scraper: scraper, stop: stop, stopper: stopper, grace: grace) { [store, onEvent] trial, reason in
            onEvent(.trialWaiting(trial, reason: reason))
            Task { try? await store.appendEvent(EventRecord(experimentId: experimentId, kind: "TrialWaiting", trialName: trial.name, message: reason)) }
        }

        let finalDecision: ExperimentPolicy.Decision? = try await withThrowingTaskGroup(of: ChildResult.self) { group in
            // Every trial's follower has ended by the time this returns; what may be left is the task
            // waiting for a wake, which must not keep the group open.
            defer { group.cancelAll() }
            func follow(_ trial: TrialRecord, _ work: @escaping @Sendable () async -> TrialExecution.Finished?) {
                group.addTask {
                    guard let outcome = await work() else { return .ended(nil) }
                    let recorded = try await self.store.finishTrial(trial.id!, outcome.end)
                    if let recorded { stopper?.update([recorded]) }
                    // Only now that the end is recorded may what the trial left go (a crash before this point
                    // leaves it for the next process to read again).
                    await outcome.process?.release()
                    if let recorded { return .ended(recorded) }
                    return .ended(try await self.store.trial(named: trial.name))
                }
            }
            var ticking = false
            /// Ends of trials, in the order they come; ticks are skipped.
            func nextEnd() async throws -> TrialRecord?? {
                while let result = try await group.next() {
                    switch result {
                    case .ended(let trial): return .some(trial)
                    case .tick: ticking = false
                    }
                }
                return nil
            }
            for (trial, process) in adopted {
                let launch = self.launch(for: trial, experiment: experiment)
                follow(trial) { await execution.resume(trial, process: process, launch: launch, metricsPath: self.metricsPath(launch)) }
            }
            for trial in pending {
                let launch = self.launch(for: trial, experiment: experiment)
                onEvent(.trialStarted(trial))
                follow(trial) { await execution.run(trial, launch: launch, metricsPath: self.metricsPath(launch)) }
            }
            var startReported = false
            func startCompleted() async {
                guard !startReported else { return }
                startReported = true
                await onStarted?()
            }
            do {
                while true {
                    if stop.isDetached {
                        await startCompleted()
                        // Leave the trials running for the next process to adopt.
                        while try await nextEnd() != nil {}
                        return nil
                    }
                    if let reason = stop.reason { policy.stopRequested = reason }
                    if let edited = budget?.current {
                        policy.parallelTrialCount = Swift.min(edited.parallelTrialCount, maxParallelTrialCount)
                        policy.maxTrialCount = edited.maxTrialCount
                        policy.failureLimit = edited.maxFailedTrialCount.map { Swift.max(1, $0) }
                    }
                    onDecide?()
                    switch policy.decide() {
                    case .finish(let status, let reason, let message):
                        await startCompleted()
                        if policy.running > 0 {
                            onEvent(.stopping("\(reason): stopping \(policy.running) running trial\(policy.running == 1 ? "" : "s")"))
                            stop.stopTrials(status == .stopped ? message : "the experiment ended (\(reason))")
                            while let ended = try await nextEnd() {
                                if let ended { await report(ended, experiment: experiment, policy: &policy, book: &book) }
                            }
                        }
                        return .finish(status, reason: reason, message: message)
                    case .launch(let count):
                        let history = book.history
                        await onSuggest?(history)
                        let suggestions: [Suggestion]
                        do {
                            suggestions = try suggester.suggest(count: count, history: history)
                        } catch SuggesterError.exhausted {
                            policy.exhausted = true
                            continue
                        }
                        if suggestions.isEmpty {
                            // Nothing until a running trial ends; with none running, nothing ever.
                            if policy.running > 0 { policy.waitingForResults = true } else { policy.exhausted = true }
                            continue
                        }
                        let trials = try await store.createTrials(suggestions.map { suggestion in
                            NewTrial(assignments: space.parameters.map { ParameterAssignment(name: $0.name, value: suggestion.assignment[$0.name]?.description ?? "") },
                                     suggesterMetadata: suggestion.metadata)
                        }, for: experiment)
                        book.add(trials)
                        stopper?.update(trials)
                        policy.trialsStarted(trials.count)
                        for trial in trials {
                            let launch = self.launch(for: trial, experiment: experiment)
                            onEvent(.trialStarted(trial))
                            follow(trial) { await execution.run(trial, launch: launch, metricsPath: self.metricsPath(launch)) }
                        }
                    case .wait:
                        await startCompleted()
                        // A stop request or a budget edit may come with no trial ending: they wake this loop.
                        if !ticking {
                            ticking = true
                            group.addTask { [stop, budget] in
                                await withTaskGroup(of: Void.self) { wakes in
                                    wakes.addTask { await stop.wakeup.wait() }
                                    if let budget { wakes.addTask { await budget.wakeup.wait() } }
                                    await wakes.next()
                                    wakes.cancelAll()
                                }
                                return .tick
                            }
                        }
                        guard let result = try await group.next() else { continue }
                        guard case .ended(let next) = result else {
                            ticking = false
                            continue
                        }
                        if let ended = next {
                            await report(ended, experiment: experiment, policy: &policy, book: &book)
                        } else {
                            policy.running -= 1  // detached, or the trial's row is gone (deleted meanwhile)
                            policy.waitingForResults = false
                        }
                    }
                }
            } catch {
                // The controller cannot go on (the store cannot be written, the suggester failed):
                // its trials are stopped and followed to their end, not left to spin unwatched.
                stop.stopTrials("the experiment's controller stopped: \(error)")
                while true {
                    do {
                        guard try await group.next() != nil else { break }
                    } catch {}
                }
                throw error
            }
        }
        guard case .finish(let status, let reason, let message)? = finalDecision else {
            return try await store.requireExperiment(experiment.name)
        }
        try await store.finishExperiment(experimentId, status: status, reason: reason, message: message)
        return try await store.requireExperiment(experiment.name)
    }

    private func report(_ trial: TrialRecord, experiment: ExperimentRecord, policy: inout ExperimentPolicy, book: inout HistoryBook) async {
        book.update(trial)
        let reachedGoal = trial.state == .succeeded && trial.objectiveValue.map(spec.objective.reachesGoal) == true
        policy.trialEnded(trial.state, reachedGoal: reachedGoal)
        let best = try? await store.optimalTrial(of: experiment)
        onEvent(.trialEnded(trial, best: best, completed: policy.completed))
    }

    /// The trials as the store holds them, as the suggester sees them; objectives oriented so
    /// that lower is better.
    func history(_ experimentId: Int64, space: SearchSpace) async throws -> History {
        HistoryBook(try await store.trials(of: experimentId), space: space, objective: spec.objective).history
    }

    /// A running trial this runner cannot adopt (started without a supervisor): stopped if its
    /// process group is still there, and recorded as ended either way.
    private func recover(_ trial: TrialRecord) async throws -> TrialEnd? {
        let end: TrialEnd
        if let stopping = trial.stopping {
            // Its stop was decided before the earlier process died: it ends as decided, once.
            if let pgid = trial.runnerHandle["pgid"].flatMap(Int32.init), kill(-pgid, 0) == 0 { kill(-pgid, SIGKILL) }
            var observation = ObservationBuilder(metricNames: spec.metricNames)
            for record in try await store.metrics(ofTrial: trial.id!) {
                observation.add(MetricReport(name: record.name, value: record.value, text: record.text, step: record.step))
            }
            let best = stopping.state == .earlyStopped
                ? observation.value(of: spec.objective.objectiveMetricName, strategy: spec.objective.type == .maximize ? .max : .min) : nil
            end = TrialEnd(state: stopping.state, reason: stopping.reason, message: stopping.message,
                           observation: observation.metrics, objectiveValue: best)
        } else if let pgid = trial.runnerHandle["pgid"].flatMap(Int32.init), kill(-pgid, 0) == 0 {
            kill(-pgid, SIGKILL)
            end = TrialEnd(state: .killed, reason: "Interrupted",
                           message: "knob stopped while this trial ran and could not follow it again; its process group \(pgid) was killed")
        } else {
            end = TrialEnd(state: .failed, reason: "Lost",
                           message: "knob stopped while this trial ran, and its process was gone on resume; its result is unknown")
        }
        return try await store.finishTrial(trial.id!, end).map { _ in end }
    }

    func launch(for trial: TrialRecord, experiment: ExperimentRecord) -> TrialLaunch {
        let template = spec.trialTemplate
        let assignment = Dictionary(trial.assignments.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        let values = TemplateRenderer.values(for: template, assignment: assignment, trialName: trial.name,
                                             namespace: spec.namespace ?? "default")
        let base = experiment.directory
        let workingDirectory = template.workingDir.map { TemplateRenderer.render($0, values: values) }
            .map { $0.hasPrefix("/") ? $0 : "\(base)/\($0)" } ?? base
        return TrialLaunch(
            experimentName: experiment.name, trialName: trial.name,
            argv: (template.command ?? []).map { TemplateRenderer.render($0, values: values) },
            workingDirectory: (workingDirectory as NSString).standardizingPath,
            environment: template.env.mapValues { TemplateRenderer.render($0, values: values) },
            logPath: home.logPath(experiment: experiment.name, trial: trial.name),
            trialDirectory: home.trialDirectory(experiment: experiment.name, trial: trial.name),
            kubernetes: KubernetesLaunch(spec: spec, values: values),
            trialUID: "\(trial.id ?? 0)-\(Int64(trial.createdAt.timeIntervalSince1970 * 1000))")
    }

    /// For a File collector: the metrics file (a relative path is inside the trial's folder).
    func metricsPath(_ launch: TrialLaunch) -> String? {
        guard spec.metricsCollector.kind == .file, let path = spec.metricsCollector.path else { return nil }
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
public final class LiveBudget: @unchecked Sendable {
    private let lock = NSLock()
    private var value: ExperimentView.Budget

    public init(_ value: ExperimentView.Budget) {
        self.value = value
    }

    public var current: ExperimentView.Budget {
        lock.lock()
        defer { lock.unlock() }
        return value
    }

    public func set(_ newValue: ExperimentView.Budget) {
        lock.lock()
        value = newValue
        lock.unlock()
        wakeup.wake()
    }

    /// Told of every edit, so that the controller applies it at once.
    let wakeup = Wakeup()
}
