import KnobAlgorithms
import Store
import Synchronization

/// An experiment's early stopping: its rule, and every trial's objective curve kept in memory, so
/// that the rule is evaluated on each batch of stored reports without reading the store. The
/// curves are read from the store once, when the controller starts, and are then updated from what
/// the controller writes, in the order the store holds them.
final class EarlyStopper: Sendable {
    let rule: any StoppingRule
    let metric: String
    let maximize: Bool
    private let curves: Mutex<[Int64: TrialCurve]>

    init(rule: any StoppingRule, metric: String, maximize: Bool, trials: [TrialRecord],
         reports: [(trialId: Int64, id: Int64, step: Int, value: Double)]) {
        self.rule = rule
        self.metric = metric
        self.maximize = maximize
        var curves: [Int64: TrialCurve] = [:]
        for trial in trials {
            guard let id = trial.id else { continue }
            curves[id] = TrialCurve(id: id, state: Self.state(trial.state), points: [])
        }
        for report in reports {
            curves[report.trialId]?.points.append(TrialCurve.Point(step: report.step, value: report.value, order: report.id))
        }
        self.curves = Mutex(curves)
    }

    /// The experiment's rule when its spec has one, with the curves as the store holds them.
    static func make(spec: ExperimentSpec, experimentId: Int64, store: Store) async throws -> EarlyStopper? {
        guard let early = spec.earlyStopping else { return nil }
        let maximize = spec.objective.type == .maximize
        let rule = try StoppingRuleRegistry.make(early.algorithmName, context: StoppingContext(settings: early.settingsByName, maximize: maximize))
        let metric = spec.objective.objectiveMetricName
        return EarlyStopper(rule: rule, metric: metric, maximize: maximize, trials: try await store.trials(of: experimentId),
                            reports: try await store.reports(of: experimentId, metric: metric))
    }

    private static func state(_ state: TrialState) -> TrialCurve.State {
        switch state {
        case .pending, .running: .running
        case .succeeded: .completed
        default: .ended
        }
    }

    /// Trials the controller created, or whose state changed.
    func update(_ trials: [TrialRecord]) {
        curves.withLock { curves in
            for trial in trials {
                guard let id = trial.id else { continue }
                curves[id, default: TrialCurve(id: id, state: .running, points: [])].state = Self.state(trial.state)
            }
        }
    }

    /// Adds a trial's newly stored objective reports (`order` is each one's row id in the store) and
    /// says whether the rule stops the trial now.
    func observe(trialId: Int64, _ points: [TrialCurve.Point]) -> StopReason? {
        curves.withLock { curves in
            guard !points.isEmpty else { return nil }
            curves[trialId, default: TrialCurve(id: trialId, state: .running, points: [])].points.append(contentsOf: points)
            guard let trial = curves[trialId], trial.state == .running else { return nil }
            return rule.decide(trial, others: Array(curves.values)).reason
        }
    }
}
