import Store

/// The decisions of an experiment's controller, as a value with no I/O: given what has happened
/// so far, whether to start trials, wait for one to end, or end the experiment, and why.
public struct ExperimentPolicy: Sendable, Hashable {
    public var parallelTrialCount: Int
    public var maxTrialCount: Int?
    /// Failures (Failed + MetricsUnavailable) at which the experiment fails.
    public var failureLimit: Int?

    /// Trials created so far (in any state).
    public var created = 0
    /// Trials started and not yet ended.
    public var running = 0
    /// Trials ended, by state.
    public var ended: [TrialState: Int] = [:]
    /// A trial reached the objective's goal.
    public var goalReached = false
    /// The suggester has nothing more to propose.
    public var exhausted = false
    /// The suggester has nothing to propose until a running trial ends (e.g. CMA-ES waiting for
    /// the rest of its generation).
    public var waitingForResults = false
    /// Someone asked the experiment to stop.
    public var stopRequested: String?

    public init(parallelTrialCount: Int, maxTrialCount: Int?, failureLimit: Int?) {
        self.parallelTrialCount = parallelTrialCount
        self.maxTrialCount = maxTrialCount
        self.failureLimit = failureLimit
    }

    public enum Decision: Sendable, Hashable {
        /// Ask the suggester for this many trials and start them.
        case launch(Int)
        /// Wait for a running trial to end.
        case wait
        /// End the experiment (running trials are stopped).
        case finish(ExperimentStatus, reason: String, message: String)
    }

    public var completed: Int { ended.values.reduce(0, +) }
    public var failures: Int { ended.filter { $0.key.countsAsFailure }.map(\.value).reduce(0, +) }

    public func decide() -> Decision {
        if let stopRequested {
            return .finish(.stopped, reason: "StoppedByUser", message: stopRequested)
        }
        if goalReached {
            return .finish(.succeeded, reason: "GoalReached", message: "a trial reached the objective's goal")
        }
        if let failureLimit, failures >= failureLimit {
            return .finish(.failed, reason: "MaxFailedTrialsReached",
                           message: "\(failures) trials failed, maxFailedTrialCount is \(failureLimit)")
        }
        if let maxTrialCount, completed >= maxTrialCount {
            return .finish(.succeeded, reason: "MaxTrialsReached", message: "all \(maxTrialCount) trials have ended")
        }
        if exhausted, running == 0 {
            return .finish(.succeeded, reason: "SearchSpaceExhausted", message: "every point of the search space has been tried")
        }
        var free = parallelTrialCount - running
        if let maxTrialCount { free = Swift.min(free, maxTrialCount - created) }
        if free > 0, !exhausted, !waitingForResults { return .launch(free) }
        return .wait
    }

    public mutating func trialsStarted(_ count: Int) {
        created += count
        running += count
    }

    public mutating func trialEnded(_ state: TrialState, reachedGoal: Bool) {
        running -= 1
        waitingForResults = false
        ended[state, default: 0] += 1
        if reachedGoal { goalReached = true }
    }
}
