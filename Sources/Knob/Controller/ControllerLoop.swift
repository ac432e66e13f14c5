import KnobAlgorithms
import Store

/// One run of an experiment's controller after its start: keeps `parallelTrialCount` trials
/// running, follows each to its end in a child task, records the ends, and stops when the policy
/// says so. The loop looks at the experiment when a trial ends or when a stop request or a budget
/// edit wakes it, never on a timer.
struct ControllerLoop {
    let controller: ExperimentController
    let experiment: ExperimentRecord
    let suggester: any Suggester
    let execution: TrialExecution
    let stopper: EarlyStopper?
    var policy: ExperimentPolicy
    var book: HistoryBook
    /// A child task waits for a wake (stop request or budget edit).
    private var ticking = false
    private var startReported = false

    init(controller: ExperimentController, experiment: ExperimentRecord, suggester: any Suggester, execution: TrialExecution,
         stopper: EarlyStopper?, policy: ExperimentPolicy, book: HistoryBook) {
        self.controller = controller
        self.experiment = experiment
        self.suggester = suggester
        self.execution = execution
        self.stopper = stopper
        self.policy = policy
        self.book = book
    }

    /// What a child task reports: a trial's end (nil when detached or its row is gone), or that it
    /// is time to look at budget edits and stop requests again.
    enum ChildResult: Sendable {
        case ended(TrialRecord?)
        case tick
    }

    typealias Group = ThrowingTaskGroup<ChildResult, any Error>

    /// Follows the adopted and pending trials, then runs the loop; the final decision, or nil when
    /// detached (the trials are left running for the next process).
    mutating func drive(adopted: [(TrialRecord, any RunningTrial)], pending: [TrialRecord]) async throws -> ExperimentPolicy.Decision? {
        try await withThrowingTaskGroup(of: ChildResult.self) { group in
            // Every trial's follower has ended by the time this returns; what may be left is the task
            // waiting for a wake, which must not keep the group open.
            defer { group.cancelAll() }
            for (trial, process) in adopted {
                let launch = controller.launch(for: trial, experiment: experiment)
                follow(trial, in: &group) { [execution, controller] in
                    await execution.resume(trial, process: process, launch: launch, metricsPath: controller.metricsPath(launch))
                }
            }
            start(pending, in: &group)
            do {
                return try await loop(&group)
            } catch {
                // The controller cannot go on (the store cannot be written, the suggester failed):
                // its trials are stopped and followed to their end, not left to spin unwatched.
                controller.stop.stopTrials("the experiment's controller stopped: \(error)")
                while true {
                    do {
                        guard try await group.next() != nil else { break }
                    } catch {}
                }
                throw error
            }
        }
    }

    private mutating func loop(_ group: inout Group) async throws -> ExperimentPolicy.Decision? {
        while true {
            if controller.stop.isDetached {
                await startCompleted()
                // Leave the trials running for the next process to adopt.
                while try await nextEnd(&group) != nil {}
                return nil
            }
            if let reason = controller.stop.reason { policy.stopRequested = reason }
            if let edited = controller.budget?.current {
                policy.parallelTrialCount = Swift.min(edited.parallelTrialCount, controller.maxParallelTrialCount)
                policy.maxTrialCount = edited.maxTrialCount
                policy.failureLimit = edited.maxFailedTrialCount.map { Swift.max(1, $0) }
            }
            controller.onDecide?()
            switch policy.decide() {
            case .finish(let status, let reason, let message):
                await startCompleted()
                try await stopRunningTrials(status: status, reason: reason, message: message, &group)
                return .finish(status, reason: reason, message: message)
            case .launch(let count):
                try await launch(count, &group)
            case .wait:
                await startCompleted()
                try await waitForNext(&group)
            }
        }
    }

    /// Asks the suggester for `count` trials, records them and starts them.
    private mutating func launch(_ count: Int, _ group: inout Group) async throws {
        let history = book.history
        await controller.onSuggest?(history)
        // Every call is timed, an exhausted space's and a failed one's too.
        let asked = ContinuousClock.now
        let outcome = Result { try suggester.suggest(count: count, history: history) }
        controller.observer.suggestion(controller.spec.algorithm.algorithmName, ContinuousClock.now - asked, (try? outcome.get())?.count ?? 0)
        let suggestions: [Suggestion]
        do {
            suggestions = try outcome.get()
        } catch SuggesterError.exhausted {
            policy.exhausted = true
            return
        }
        if suggestions.isEmpty {
            // Nothing until a running trial ends; with none running, nothing ever.
            if policy.running > 0 { policy.waitingForResults = true } else { policy.exhausted = true }
            return
        }
        let space = controller.spec.searchSpace
        let trials = try await controller.store.createTrials(suggestions.map { suggestion in
            NewTrial(assignments: space.parameters.map { ParameterAssignment(name: $0.name, value: suggestion.assignment[$0.name]?.description ?? "") },
                     suggesterMetadata: suggestion.metadata)
        }, for: experiment)
        book.add(trials)
        stopper?.update(trials)
        policy.trialsStarted(trials.count)
        start(trials, in: &group)
    }

    private func start(_ trials: [TrialRecord], in group: inout Group) {
        for trial in trials {
            let launch = controller.launch(for: trial, experiment: experiment)
            controller.onEvent(.trialStarted(trial))
            follow(trial, in: &group) { [execution, controller] in
                await execution.run(trial, launch: launch, metricsPath: controller.metricsPath(launch))
            }
        }
    }

    /// Runs `work` (a trial to its end) in a child task that records how the trial ended.
    private func follow(_ trial: TrialRecord, in group: inout Group, _ work: @escaping @Sendable () async -> TrialExecution.Finished?) {
        group.addTask { [store = controller.store, stopper] in
            guard let outcome = await work() else { return .ended(nil) }
            let recorded = try await store.finishTrial(trial.id!, outcome.end)
            if let recorded { stopper?.update([recorded]) }
            // Only now that the end is recorded may what the trial left go (a crash before this point
            // leaves it for the next process to read again).
            await outcome.process?.release()
            if let recorded { return .ended(recorded) }
            return .ended(try await store.trial(named: trial.name))
        }
    }

    /// Waits for a trial to end, or for a stop request or a budget edit.
    private mutating func waitForNext(_ group: inout Group) async throws {
        if !ticking {
            ticking = true
            group.addTask { [stop = controller.stop, budget = controller.budget] in
                await withTaskGroup(of: Void.self) { wakes in
                    wakes.addTask { await stop.wakeup.wait() }
                    if let budget { wakes.addTask { await budget.wakeup.wait() } }
                    await wakes.next()
                    wakes.cancelAll()
                }
                return .tick
            }
        }
        guard let result = try await group.next() else { return }
        guard case .ended(let next) = result else {
            ticking = false
            return
        }
        if let ended = next {
            await report(ended)
        } else {
            policy.running -= 1  // detached, or the trial's row is gone (deleted meanwhile)
            policy.waitingForResults = false
        }
    }

    /// Stops the running trials as the experiment ends, and records how each ended.
    private mutating func stopRunningTrials(status: ExperimentStatus, reason: String, message: String, _ group: inout Group) async throws {
        guard policy.running > 0 else { return }
        controller.onEvent(.stopping("\(reason): stopping \(policy.running) running trial\(policy.running == 1 ? "" : "s")"))
        controller.stop.stopTrials(status == .stopped ? message : "the experiment ended (\(reason))")
        while let ended = try await nextEnd(&group) {
            if let ended { await report(ended) }
        }
    }

    /// Ends of trials, in the order they come; ticks are skipped.
    private mutating func nextEnd(_ group: inout Group) async throws -> TrialRecord?? {
        while let result = try await group.next() {
            switch result {
            case .ended(let trial): return .some(trial)
            case .tick: ticking = false
            }
        }
        return nil
    }

    private mutating func report(_ trial: TrialRecord) async {
        book.update(trial)
        let reachedGoal = trial.state == .succeeded && trial.objectiveValue.map(controller.spec.objective.reachesGoal) == true
        policy.trialEnded(trial.state, reachedGoal: reachedGoal)
        // The book keeps the optimal trial from the ends it records; the store is asked only when it lost track.
        if !book.optimalKnown, let best = try? await controller.store.optimalTrial(of: experiment) { book.setOptimal(best) }
        controller.onEvent(.trialEnded(trial, best: book.optimalKnown ? book.optimal : nil, completed: policy.completed))
    }

    private mutating func startCompleted() async {
        guard !startReported else { return }
        startReported = true
        await controller.onStarted?()
    }
}
