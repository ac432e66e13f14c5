import Foundation
import GRDB

/// Lifecycle of an experiment: `created → running → succeeded | failed`, or `stopped` by a user.
public enum ExperimentStatus: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case created = "Created"
    case running = "Running"
    case succeeded = "Succeeded"
    case failed = "Failed"
    case stopped = "Stopped"

    /// Whether the experiment has ended.
    public var isFinished: Bool { self == .succeeded || self == .failed || self == .stopped }
}

/// Lifecycle of a trial: `pending → running →` one of the final states.
public enum TrialState: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case pending = "Pending"
    case running = "Running"
    case succeeded = "Succeeded"
    case failed = "Failed"
    case earlyStopped = "EarlyStopped"
    case metricsUnavailable = "MetricsUnavailable"
    case killed = "Killed"

    public var isFinished: Bool { self != .pending && self != .running }
    /// How an event says the trial ended: `trial mnist-3 stopped early: …`.
    public var eventVerb: String {
        switch self {
        case .earlyStopped: "stopped early"
        case .metricsUnavailable: "ended without metrics"
        default: rawValue.lowercased()
        }
    }

    /// Counts toward `maxFailedTrialCount`.
    public var countsAsFailure: Bool { self == .failed || self == .metricsUnavailable }
}

/// One parameter's value as Katib's `parameterAssignments` carry it.
public struct ParameterAssignment: Codable, Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A metric reduced over its reports, Katib's `observation.metrics[]` item.
public struct MetricSummary: Codable, Sendable, Hashable {
    public var name: String
    public var min: Double
    public var max: Double
    public var latest: Double
    /// Number of numeric reports seen.
    public var count: Int

    public init(name: String, min: Double, max: Double, latest: Double, count: Int) {
        self.name = name
        self.min = min
        self.max = max
        self.latest = latest
        self.count = count
    }
}

/// A row of `experiment`.
public struct ExperimentRecord: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "experiment"

    public var id: Int64?
    public var name: String
    /// The spec exactly as submitted.
    public var specText: String
    /// The parsed spec, as JSON.
    public var specJSON: String
    public var status: ExperimentStatus
    public var reason: String
    public var message: String
    /// Seed of the experiment's suggester (the spec's `random_state` when it sets one).
    public var seed: Int64
    /// `maximize` or `minimize`, for ordering trials by objective.
    public var objectiveType: String
    public var objectiveMetricName: String
    /// Where this experiment's trial logs and working directories live.
    public var directory: String
    public var createdAt: Date
    public var startedAt: Date?
    public var completedAt: Date?

    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let name = Column(CodingKeys.name)
        public static let status = Column(CodingKeys.status)
        public static let createdAt = Column(CodingKeys.createdAt)
    }

    public init(
        name: String, specText: String, specJSON: String, seed: UInt64, objectiveType: String,
        objectiveMetricName: String, directory: String, createdAt: Date = Date()
    ) {
        self.name = name
        self.specText = specText
        self.specJSON = specJSON
        self.status = .created
        self.reason = "ExperimentCreated"
        self.message = "Experiment is created"
        self.seed = Int64(bitPattern: seed)
        self.objectiveType = objectiveType
        self.objectiveMetricName = objectiveMetricName
        self.directory = directory
        self.createdAt = createdAt
    }

    public var maximizes: Bool { objectiveType == "maximize" }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }
}

/// A row of `trial`.
public struct TrialRecord: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "trial"

    public var id: Int64?
    public var experimentId: Int64
    /// 1-based creation order within the experiment.
    public var sequence: Int
    public var name: String
    public var assignments: [ParameterAssignment]
    /// What the suggester attached to this trial's suggestion.
    public var suggesterMetadata: [String: String]
    public var state: TrialState
    public var reason: String
    public var message: String
    /// How to find the running trial again: pid and process group, or pod name.
    public var runnerHandle: [String: String]
    public var logPath: String?
    /// Bytes of the log already scraped and recorded.
    public var logOffset: Int64
    public var observation: [MetricSummary]
    /// The objective as `metricStrategies` picks it, when the trial reported it.
    public var objectiveValue: Double?
    public var exitCode: Int?
    public var createdAt: Date
    public var startedAt: Date?
    public var completedAt: Date?
    /// How the trial will end, decided while it runs (an early stop) and not yet applied.
    public var stopping: TrialStopping? = nil

    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let experimentId = Column(CodingKeys.experimentId)
        public static let sequence = Column(CodingKeys.sequence)
        public static let name = Column(CodingKeys.name)
        public static let state = Column(CodingKeys.state)
        public static let objectiveValue = Column(CodingKeys.objectiveValue)
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }

    /// The trial's value for parameter `name`.
    public func value(of name: String) -> String? {
        assignments.first { $0.name == name }?.value
    }
}

extension TrialRecord {
    /// A row read column by column: the controller reads a trial back each time one ends, and the API reads pages of
    /// them. Values are what the Codable decoding gives (the same conversions, the same JSON decoder for the JSON
    /// columns), without its keyed containers; the empty `{}` and `[]` a new trial is stored with need no decoder.
    public init(row: Row) throws {
        id = try row.decode(forColumn: "id")
        experimentId = try row.decode(forColumn: "experimentId")
        sequence = try row.decode(forColumn: "sequence")
        name = try row.decode(forColumn: "name")
        assignments = try Self.jsonArray(row, "assignments")
        suggesterMetadata = try Self.jsonDictionary(row, "suggesterMetadata")
        state = try row.decode(forColumn: "state")
        reason = try row.decode(forColumn: "reason")
        message = try row.decode(forColumn: "message")
        runnerHandle = try Self.jsonDictionary(row, "runnerHandle")
        logPath = try row.decode(forColumn: "logPath")
        logOffset = try row.decode(forColumn: "logOffset")
        observation = try Self.jsonArray(row, "observation")
        objectiveValue = try row.decode(forColumn: "objectiveValue")
        exitCode = try row.decode(forColumn: "exitCode")
        // NULL is GRDB's to refuse, with its own error.
        createdAt = try StoredDate.decode(row, "createdAt") ?? row.decode(forColumn: "createdAt")
        startedAt = try StoredDate.decode(row, "startedAt")
        completedAt = try StoredDate.decode(row, "completedAt")
        stopping = try Self.jsonText(row, "stopping", optional: true).map { try Self.databaseJSONDecoder(for: "stopping").decode(TrialStopping.self, from: $0) }
    }

    private static func jsonArray<Element: Decodable>(_ row: Row, _ column: String) throws -> [Element] {
        let data = try jsonText(row, column, optional: false)!
        if data.elementsEqual("[]".utf8) { return [] }
        if Element.self == ParameterAssignment.self, let plain = data.withUnsafeBytes({ PlainJSON.assignments($0.bindMemory(to: UInt8.self)) }) {
            return plain as! [Element]
        }
        if Element.self == MetricSummary.self, let plain = data.withUnsafeBytes({ PlainJSON.observation($0.bindMemory(to: UInt8.self)) }) {
            return plain as! [Element]
        }
        return try databaseJSONDecoder(for: column).decode([Element].self, from: data)
    }

    private static func jsonDictionary(_ row: Row, _ column: String) throws -> [String: String] {
        let data = try jsonText(row, column, optional: false)!
        if data.elementsEqual("{}".utf8) { return [:] }
        if let plain = data.withUnsafeBytes({ PlainJSON.dictionary($0.bindMemory(to: UInt8.self)) }) { return plain }
        return try databaseJSONDecoder(for: column).decode([String: String].self, from: data)
    }

    /// The JSON text of `column` (text or blob); nil when it is NULL or missing and `optional`.
    private static func jsonText(_ row: Row, _ column: String, optional: Bool) throws -> Data? {
        let value: DatabaseValue? = row.hasColumn(column) ? row[column] : nil
        switch value?.storage {
        case .string(let text)?: return Data(text.utf8)
        case .blob(let bytes)?: return bytes
        case .null?, nil:
            if optional { return nil }
            throw TrialRowError(column: column, value: value)
        default: throw TrialRowError(column: column, value: value)
        }
    }
}

/// A trial row whose JSON column is missing or not text.
struct TrialRowError: Error, CustomStringConvertible {
    let column: String
    let value: DatabaseValue?
    var description: String { "the trial's column \(column) is \(value.map { "\($0)" } ?? "missing"), not JSON text" }
}

/// An end decided for a running trial: the trial is being stopped, and ends this way.
public struct TrialStopping: Codable, Sendable, Hashable {
    public var state: TrialState
    public var reason: String
    public var message: String

    public init(state: TrialState, reason: String, message: String) {
        self.state = state
        self.reason = reason
        self.message = message
    }
}

/// A row of `metric`: one report of one metric by one trial.
public struct MetricRecord: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "metric"

    public var id: Int64?
    public var trialId: Int64
    public var name: String
    /// The numeric value; `nil` for a report that was not a number.
    public var value: Double?
    /// The value as written, when it was not a (finite) number.
    public var text: String?
    /// Per-metric report number, or the step the report named.
    public var step: Int
    public var timestamp: Date

    public enum Columns {
        public static let trialId = Column(CodingKeys.trialId)
        public static let name = Column(CodingKeys.name)
        public static let step = Column(CodingKeys.step)
    }

    public init(trialId: Int64, name: String, value: Double?, text: String?, step: Int, timestamp: Date) {
        self.trialId = trialId
        self.name = name
        self.value = value
        self.text = text
        self.step = step
        self.timestamp = timestamp
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }
}

/// A row of `event`: the append-only audit log of an experiment.
public struct EventRecord: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "event"

    public var id: Int64?
    public var experimentId: Int64
    public var time: Date
    /// Short machine-readable kind, e.g. `TrialStarted`, `TrialFailed`, `ExperimentSucceeded`.
    public var kind: String
    public var trialName: String?
    public var message: String

    public enum Columns {
        public static let experimentId = Column(CodingKeys.experimentId)
        public static let id = Column(CodingKeys.id)
    }

    public init(experimentId: Int64, kind: String, trialName: String? = nil, message: String, time: Date = Date()) {
        self.experimentId = experimentId
        self.kind = kind
        self.trialName = trialName
        self.message = message
        self.time = time
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }
}

/// A record that reads and writes its dates as `StoredDate` does: GRDB's text, without its formatter or calendar.
/// Declaring the conformance is all: these implementations stand in for GRDB's defaults.
protocol StoredDateColumns: FetchableRecord, EncodableRecord {}

extension StoredDateColumns {
    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy { .custom(StoredDate.date) }
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .custom { StoredDate.text($0) } }
}

extension ExperimentRecord: StoredDateColumns {}
extension TrialRecord: StoredDateColumns {}
extension MetricRecord: StoredDateColumns {}
extension EventRecord: StoredDateColumns {}
