import Algorithms
import Foundation
import Store

/// What the controller tells whoever watches it (the CLI prints these).
public enum ControllerEvent: Sendable {
    case resumed(recovered: Int)
    case trialStarted(TrialRecord)
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
    let onEvent: @Sendable (ControllerEvent) -> Void

    public init(store: Store, home: KnobHome, spec: ExperimentSpec, runner: any TrialRunner, stop: StopSignal,
                onEvent: @escaping @Sendable (ControllerEvent) -> Void = { _ in }) {
        self.store = store
        self.home = home
        self.spec = spec
        self.runner = runner
        self.stop = stop
        self.onEvent = onEvent
    }

    /// Runs the experiment until it ends and returns its final record.
    public func run(_ experiment: ExperimentRecord) async throws -> ExperimentRecord {
        guard spec.trialTemplate.command != nil else { throw KnobError.needsCommand(spec.name) }
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
        let execution = TrialExecution(store: store, runner: runner, spec: spec, scraper: scraper, stop: stop, grace: grace)

        try await store.markExperimentRunning(experimentId)
        let recovered = try await recoverInterruptedTrials(experimentId)
        if recovered > 0 { onEvent(.resumed(recovered: recovered)) }

        var policy = ExperimentPolicy(parallelTrialCount: spec.parallelTrialCount, maxTrialCount: spec.maxTrialCount,
                                      failureLimit: spec.failureLimit)
        for trial in try await store.trials(of: experimentId) {
            policy.created += 1
            policy.ended[trial.state, default: 0] += 1
            if trial.state == .succeeded, let value = trial.objectiveValue, spec.objective.reachesGoal(value) { policy.goalReached = true }
        }

        let finalDecision: ExperimentPolicy.Decision = try await withThrowingTaskGroup(of: TrialRecord?.self) { group in
            while true {
                if let reason = stop.reason { policy.stopRequested = reason }
                switch policy.decide() {
                case .finish(let status, let reason, let message):
                    if policy.running > 0 {
                        onEvent(.stopping("\(reason): stopping \(policy.running) running trial\(policy.running == 1 ? "" : "s")"))
                        stop.request(status == .stopped ? message : "the experiment ended (\(reason))")
                        while let ended = try await group.next() {
                            if let ended { await report(ended, experiment: experiment, policy: &policy) }
                        }
                    }
                    return .finish(status, reason: reason, message: message)
                case .launch(let count):
                    let history = try await self.history(experimentId, space: space)
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
                    policy.trialsStarted(trials.count)
                    for trial in trials {
                        let launch = self.launch(for: trial, experiment: experiment)
                        onEvent(.trialStarted(trial))
                        group.addTask {
                            let end = await execution.run(trial, launch: launch, metricsPath: self.metricsPath(launch))
                            if let finished = try await self.store.finishTrial(trial.id!, end) { return finished }
                            return try await self.store.trial(named: trial.name)
                        }
                    }
                case .wait:
                    guard let next = try await group.next() else { continue }
                    if let ended = next {
                        await report(ended, experiment: experiment, policy: &policy)
                    } else {
                        policy.running -= 1  // the trial's row is gone (deleted meanwhile)
                        policy.waitingForResults = false
                    }
                }
            }
        }
        guard case .finish(let status, let reason, let message) = finalDecision else { return experiment }
        try await store.finishExperiment(experimentId, status: status, reason: reason, message: message)
        return try await store.requireExperiment(experiment.name)
    }

    private func report(_ trial: TrialRecord, experiment: ExperimentRecord, policy: inout ExperimentPolicy) async {
        let reachedGoal = trial.state == .succeeded && trial.objectiveValue.map(spec.objective.reachesGoal) == true
        policy.trialEnded(trial.state, reachedGoal: reachedGoal)
        let best = try? await store.optimalTrial(of: experiment)
        onEvent(.trialEnded(trial, best: best, completed: policy.completed))
    }

    /// The trials as the suggester sees them; objectives oriented so that lower is better.
    func history(_ experimentId: Int64, space: SearchSpace) async throws -> History {
        let sign = spec.objective.type == .maximize ? -1.0 : 1.0
        return History(try await store.trials(of: experimentId).map { trial in
            let outcome: History.Trial.Outcome = switch trial.state {
            case .pending, .running: .pending
            case .succeeded: trial.objectiveValue.map { .completed(sign * $0) } ?? .failed
            default: .failed
            }
            return History.Trial(assignment: space.assignment(from: trial.assignments), outcome: outcome, metadata: trial.suggesterMetadata)
        })
    }

    /// Trials left Pending or Running by a run that did not end cleanly: a trial whose process is
    /// still alive is stopped; all of them are recorded as ended, with why.
    private func recoverInterruptedTrials(_ experimentId: Int64) async throws -> Int {
        var count = 0
        for trial in try await store.trials(of: experimentId) where !trial.state.isFinished {
            count += 1
            if trial.state == .running, let pgid = trial.runnerHandle["pgid"].flatMap(Int32.init), kill(-pgid, 0) == 0 {
                kill(-pgid, SIGKILL)
                try await store.finishTrial(trial.id!, TrialEnd(state: .killed, reason: "Interrupted",
                    message: "knob stopped while this trial ran; its process group \(pgid) was killed on resume"))
            } else if trial.state == .running {
                try await store.finishTrial(trial.id!, TrialEnd(state: .failed, reason: "Lost",
                    message: "knob stopped while this trial ran, and its process was gone on resume; its result is unknown"))
            } else {
                try await store.finishTrial(trial.id!, TrialEnd(state: .killed, reason: "Interrupted",
                    message: "knob stopped before this trial started"))
            }
        }
        return count
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
            trialDirectory: home.trialDirectory(experiment: experiment.name, trial: trial.name))
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
