import Foundation
import Store

/// An experiment as the API and `knob get -o json` show it.
public struct ExperimentView: Codable, Sendable {
    public struct Budget: Codable, Sendable, Hashable {
        public var maxTrialCount: Int?
        public var parallelTrialCount: Int
        public var maxFailedTrialCount: Int?

        public init(maxTrialCount: Int?, parallelTrialCount: Int, maxFailedTrialCount: Int?) {
            self.maxTrialCount = maxTrialCount
            self.parallelTrialCount = parallelTrialCount
            self.maxFailedTrialCount = maxFailedTrialCount
        }
    }

    public struct Event: Codable, Sendable {
        public var time: Date
        public var kind: String
        public var trialName: String?
        public var message: String
    }

    public var name: String
    public var status: String
    public var reason: String
    public var message: String
    public var algorithm: String
    /// `medianstop (min_trials_required=3, start_step=4)`, when the spec has early stopping.
    public var earlyStopping: String?
    /// `maximize accuracy`.
    public var objective: String
    public var goal: Double?
    public var budget: Budget
    /// Trials by state.
    public var trials: [String: Int]
    public var currentOptimalTrial: OptimalTrial
    public var bestObjectiveValue: Double?
    public var createdAt: Date
    public var startedAt: Date?
    public var completedAt: Date?
    /// The latest events, oldest first (only when asked for one experiment).
    public var events: [Event]?
    /// Whether a controller (knobd's, or a `knob run`) drives the experiment now. A Running
    /// experiment that nothing drives makes no progress until knobd resumes it. Nil when unknown.
    public var driven: Bool?

    /// Builds the view from the store.
    public static func load(_ experiment: ExperimentRecord, store: Store, events eventLimit: Int? = nil) async throws -> ExperimentView {
        let spec = try experiment.parsedSpec()
        let counts = try await store.trialCounts(of: experiment.id!)
        let best = try await store.optimalTrial(of: experiment)
        let events = try await eventLimit.asyncMap { try await store.events(of: experiment.id!, limit: $0) }
        return ExperimentView(
            name: experiment.name, status: experiment.status.rawValue, reason: experiment.reason, message: experiment.message,
            algorithm: spec.algorithm.algorithmName, earlyStopping: spec.earlyStopping?.summary, objective: "\(spec.objective.type.rawValue) \(spec.objective.objectiveMetricName)",
            goal: spec.objective.goal,
            budget: Budget(maxTrialCount: spec.maxTrialCount, parallelTrialCount: spec.parallelTrialCount,
                           maxFailedTrialCount: spec.maxFailedTrialCount),
            trials: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
            currentOptimalTrial: OptimalTrial(best), bestObjectiveValue: best?.objectiveValue,
            createdAt: experiment.createdAt, startedAt: experiment.startedAt, completedAt: experiment.completedAt,
            events: events?.map { Event(time: $0.time, kind: $0.kind, trialName: $0.trialName, message: $0.message) },
            driven: store.path.map { KnobHome(($0 as NSString).deletingLastPathComponent).isDriven(experiment: experiment.name) })
    }

    /// Running (or about to) with no controller driving it: it makes no progress by itself.
    public var isStranded: Bool {
        (status == "Running" || status == "Created") && driven == false
    }
}

extension EarlyStoppingSpec {
    /// `medianstop (min_trials_required=3, start_step=4)`; the settings as the spec gives them.
    public var summary: String {
        settings.isEmpty ? algorithmName : "\(algorithmName) (\(settings.map { "\($0.name)=\($0.value)" }.joined(separator: ", ")))"
    }
}

extension ExperimentRecord {
    /// The spec as last recorded (with budget edits), validated again.
    public func parsedSpec() throws -> ExperimentSpec {
        if let spec = try? JSONDecoder().decode(ExperimentSpec.self, from: Data(specJSON.utf8)) { return spec }
        return try ExperimentSpec.parse(specText)
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

/// JSON as the API writes it: ISO 8601 dates, sorted keys.
public enum APIJSON {
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
