import Foundation
import KnobAlgorithms
import Store

/// An experiment's parameter importances for one metric: what `GET /v1/experiments/{name}/importances`
/// answers and `knob importance NAME -o json` prints.
///
/// The trials counted are the completed ones (Succeeded and EarlyStopped) with a finite value of the
/// metric, as the dashboard's history draws them: for the objective, the trial's objective value (an
/// early-stopped trial's best so far); for another metric, its reports reduced by its
/// `metricStrategies` entry. With fewer than 2 such trials there is nothing to compare: the list is empty.
public struct ImportanceReport: Codable, Sendable, Hashable {
    public var metric: String
    /// How the importances were computed: `fanova`.
    public var evaluator: String
    /// Trials the importances were computed from.
    public var trials: Int
    /// Every parameter, most important first.
    public var importances: [ParameterImportance]

    /// The evaluator's name in the report.
    public static let fanova = "fanova"

    /// The importances of `experiment`'s parameters for `metric` (the objective's when nil), from its
    /// `trials`; the forest is seeded with the experiment's seed, so the same trials give the same report.
    public init(experiment: ExperimentRecord, trials records: [TrialRecord], metric: String? = nil) throws {
        let spec = try experiment.parsedSpec()
        let metric = metric ?? spec.objective.objectiveMetricName
        guard spec.metricNames.contains(metric) else {
            throw UnknownMetricError(experiment: experiment.name, metric: metric, known: spec.metricNames)
        }
        let space = spec.searchSpace
        let strategy = spec.objective.metricStrategies[metric] ?? .latest
        var scored: [ScoredAssignment] = []
        for record in records where record.state == .succeeded || record.state == .earlyStopped {
            let value: Double?
            if metric == spec.objective.objectiveMetricName {
                value = record.objectiveValue
            } else {
                value = record.observation.first { $0.name == metric }.map { summary in
                    switch strategy {
                    case .min: summary.min
                    case .max: summary.max
                    case .latest: summary.latest
                    }
                }
            }
            guard let value else { continue }
            let trial = ScoredAssignment(space.assignment(from: record.assignments), value)
            if FanovaImportanceEvaluator.isUsable(trial, in: space) { scored.append(trial) }
        }
        self.metric = metric
        evaluator = Self.fanova
        trials = scored.count
        importances = scored.count < 2 ? [] : FanovaImportanceEvaluator(seed: UInt64(bitPattern: experiment.seed)).evaluate(space, scored)
    }

    /// The same report, computed on a thread of its own: fitting the forest takes a while for a large
    /// experiment (about 0.1 s of CPU for 1,000 trials in a release build), and the cooperative threads
    /// that answer the other requests are not to wait for it.
    public static func computed(experiment: ExperimentRecord, trials: [TrialRecord], metric: String? = nil) async throws -> ImportanceReport {
        let result: Result<ImportanceReport, any Error> = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: Result { try ImportanceReport(experiment: experiment, trials: trials, metric: metric) })
            }
        }
        return try result.get()
    }
}

/// An importance report was asked for a metric the experiment does not record.
public struct UnknownMetricError: Error, Sendable, CustomStringConvertible {
    public var experiment: String
    public var metric: String
    /// The experiment's metrics: the objective, then the additional ones.
    public var known: [String]

    public var description: String {
        let hint = closest(metric, in: known).map { "did you mean \($0)? " } ?? ""
        return "experiment \(experiment) has no metric named \(metric); \(hint)its metrics are \(known.joined(separator: ", "))"
    }
}
