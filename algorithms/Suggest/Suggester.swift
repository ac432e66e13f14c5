/// A suggestion algorithm.
///
/// Contract: a suggester is a pure function of the search space, its settings, the seed and the
/// history it is given. It keeps no state between calls: whatever it needs again (a CMA-ES
/// generation, say) it returns in `Suggestion.metadata` and finds in the history next time. The
/// same inputs give the same suggestions, so a restarted process continues the same search.
///
/// `suggest` may return fewer than `count` suggestions (a grid near its end) and throws
/// `SuggesterError.exhausted` when it has nothing left to propose.
public protocol Suggester: Sendable {
    /// Creates the suggester, checking its settings; throws `SuggesterError.invalidSetting` for
    /// a setting that does not apply or a value out of range.
    init(context: SuggesterContext) throws

    /// Up to `count` new assignments, none equal to a pending one when the space allows.
    func suggest(count: Int, history: History) throws -> [Suggestion]
}

/// What a suggester is created with.
public struct SuggesterContext: Sendable {
    public var space: SearchSpace
    /// `algorithmSettings` by name, values as written.
    public var settings: [String: String]
    /// The experiment's seed (`random_state` when the spec sets it).
    public var seed: UInt64
    /// Where the suggester may keep what it rebuilds from the history, so that the first call of
    /// a new process need not rebuild it all; `nil` keeps nothing.
    public var stateStore: (any SuggesterStateStore)?

    public init(space: SearchSpace, settings: [String: String] = [:], seed: UInt64, stateStore: (any SuggesterStateStore)? = nil) {
        self.space = space
        self.settings = settings
        self.seed = seed
        self.stateStore = stateStore
    }
}

/// A suggester's cache that outlives the process: named byte strings, one experiment's.
///
/// Contract: what a suggester keeps here only saves work. It never decides a suggestion: a
/// suggester checks what it reads against the history it is given (and its own configuration)
/// and ignores it when it does not match, is stale, truncated or garbage. `read` returns the bytes
/// of one complete `write` of that name (or nothing); `write` replaces them whole or not at all
/// and fails silently. Both may be called from several threads at once.
public protocol SuggesterStateStore: Sendable {
    /// The bytes last written under `name`, or `nil` when there are none or they cannot be read.
    func read(_ name: String) -> [UInt8]?
    /// Replaces the bytes under `name` (best effort).
    func write(_ name: String, _ bytes: [UInt8])
}

/// A proposed assignment, with what the suggester wants to see again with its result.
public struct Suggestion: Sendable, Hashable {
    public var assignment: Assignment
    public var metadata: [String: String]

    public init(assignment: Assignment, metadata: [String: String] = [:]) {
        self.assignment = assignment
        self.metadata = metadata
    }
}

/// The trials of an experiment as a suggester sees them, in creation order.
public struct History: Sendable {
    /// One trial: its assignment, its objective (already oriented so that lower is better), and
    /// the metadata its suggestion carried.
    public struct Trial: Sendable, Hashable {
        public enum Outcome: Sendable, Hashable {
            /// Still to run or running.
            case pending
            /// Finished with this objective value, oriented for minimization.
            case completed(Double)
            /// Finished without a usable objective (failed, killed, no metrics).
            case failed
        }

        public var assignment: Assignment
        public var outcome: Outcome
        public var metadata: [String: String]

        public init(assignment: Assignment, outcome: Outcome, metadata: [String: String] = [:]) {
            self.assignment = assignment
            self.outcome = outcome
            self.metadata = metadata
        }
    }

    public var trials: [Trial]

    public init(_ trials: [Trial] = []) {
        self.trials = trials
    }

    public var pending: [Trial] { trials.filter { $0.outcome == .pending } }

    /// Completed trials with their (minimization-oriented) objective.
    public var completed: [(assignment: Assignment, value: Double, metadata: [String: String])] {
        trials.compactMap { trial in
            if case .completed(let value) = trial.outcome { return (trial.assignment, value, trial.metadata) }
            return nil
        }
    }
}

/// What a suggester can throw.
public enum SuggesterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Every point of a finite space has been proposed.
    case exhausted
    /// `algorithmSettings` holds a name this algorithm does not know, or a bad value.
    case invalidSetting(name: String, message: String)
    /// The search space does not suit this algorithm (e.g. grid over a continuous double).
    case unsupportedSpace(parameter: String, message: String)
    /// No algorithm of this name.
    case unknownAlgorithm(String)

    public var description: String {
        switch self {
        case .exhausted:
            return "the search space is exhausted: every point has been suggested"
        case .invalidSetting(let name, let message):
            return "setting \(name): \(message)"
        case .unsupportedSpace(let parameter, let message):
            return "parameter \(parameter): \(message)"
        case .unknownAlgorithm(let name):
            return SuggesterRegistry.unknownAlgorithmMessage(name)
        }
    }
}
