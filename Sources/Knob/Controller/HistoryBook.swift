import KnobAlgorithms
import Store

/// An experiment's history as its suggester sees it, kept in memory by the controller and updated
/// from what the controller writes (new trials, ended trials), so that a suggestion does not read
/// every trial back from the store. The store is read in full once, when the controller starts.
struct HistoryBook: Sendable {
    private let space: SearchSpace
    /// -1 when the objective is maximized: the suggesters minimize.
    private let sign: Double
    private var trials: [History.Trial] = []
    /// Where each trial (by id) is in `trials`.
    private var positions: [Int64: Int] = [:]
    /// The trial with the best objective value (ties: the earliest), as the store's `optimalTrial` picks it; nil
    /// when none has one, or when `optimalKnown` is false.
    private(set) var optimal: TrialRecord?
    /// Whether `optimal` is kept: it is lost when the optimal trial itself changes, and then read from the store again.
    private(set) var optimalKnown = true

    init(_ records: [TrialRecord], space: SearchSpace, objective: ObjectiveSpec) {
        self.space = space
        sign = objective.type == .maximize ? -1 : 1
        add(records)
    }

    /// The optimal trial as read from the store, when the book had lost it.
    mutating func setOptimal(_ record: TrialRecord?) {
        optimal = record
        optimalKnown = true
    }

    /// Keeps `optimal` up to date with `record`, the latest version of one trial.
    private mutating func consider(_ record: TrialRecord) {
        guard optimalKnown else { return }
        if let current = optimal, current.id == record.id {
            // The optimal trial itself changed: whether it still is can only be known from all of them.
            if record.objectiveValue != current.objectiveValue {
                optimal = nil
                optimalKnown = false
            } else {
                optimal = record
            }
            return
        }
        guard let value = record.objectiveValue, !value.isNaN else { return }
        guard let current = optimal, let best = current.objectiveValue else {
            optimal = record
            return
        }
        // Minimized values are compared as they are, maximized ones negated (`sign`); ties go to the earlier trial.
        let (a, b) = (sign * value, sign * best)
        if a < b || (a == b && record.sequence < current.sequence) { optimal = record }
    }

    var history: History { History(trials) }

    /// Trials the controller created (or found), in creation order.
    mutating func add(_ records: [TrialRecord]) {
        for record in records {
            consider(record)
            let trial = History.Trial(assignment: space.assignment(from: record.assignments), outcome: outcome(record),
                                      metadata: record.suggesterMetadata)
            if let id = record.id, let position = positions[id] {
                trials[position] = trial
            } else {
                if let id = record.id { positions[id] = trials.count }
                trials.append(trial)
            }
        }
    }

    /// A trial whose state changed (it ended).
    mutating func update(_ record: TrialRecord) {
        guard let id = record.id, let position = positions[id] else { return add([record]) }
        consider(record)
        trials[position].outcome = outcome(record)
    }

    private func outcome(_ record: TrialRecord) -> History.Trial.Outcome {
        switch record.state {
        case .pending, .running: .pending
        // An early-stopped trial counts with its best value so far, as Katib's suggestion services see it.
        case .succeeded, .earlyStopped: record.objectiveValue.map { .completed(sign * $0) } ?? .failed
        default: .failed
        }
    }
}
