import Foundation
import GRDB
import Synchronization

/// How far a reader of an experiment's changes has read: the last event, metric report and trial
/// row that existed when it last read. Row ids only grow, so a later cursor is at least as large
/// in each part.
///
/// Every change to a trial is one of: its row is created (a new trial id), reports are stored for it
/// (new metric ids), or its state changes, which the same transaction logs as an event naming it.
/// So the trials changed after a cursor are found from the ids alone.
public struct ChangeCursor: Sendable, Hashable, CustomStringConvertible {
    public var event: Int64
    public var metric: Int64
    public var trial: Int64

    /// Before anything: reading from here reads everything.
    public static let start = ChangeCursor(event: 0, metric: 0, trial: 0)

    public init(event: Int64, metric: Int64, trial: Int64) {
        self.event = event
        self.metric = metric
        self.trial = trial
    }

    /// `event-metric-trial`, e.g. `120-5531-1001`: the id of an update in an event stream.
    public var description: String { "\(event)-\(metric)-\(trial)" }

    /// Reads the text `description` gives; nil when it is not three whole numbers joined by `-`.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.count <= 18 && $0.allSatisfy(\.isASCII) }),
              let event = Int64(parts[0]), let metric = Int64(parts[1]), let trial = Int64(parts[2]),
              event >= 0, metric >= 0, trial >= 0 else { return nil }
        self.init(event: event, metric: metric, trial: trial)
    }

    /// Whether everything this cursor has read, `other` has read too.
    public func isAtOrBefore(_ other: ChangeCursor) -> Bool {
        event <= other.event && metric <= other.metric && trial <= other.trial
    }
}

/// One numeric metric report, named by its trial.
public struct StoredReport: Sendable, Hashable, Codable {
    /// The report's row id: later reports have larger ids.
    public var id: Int64
    public var trialName: String
    public var name: String
    public var step: Int
    public var value: Double
}

/// A trial's row as stored, its lists still the JSON text they are stored as: many trials are written
/// out from these without decoding and encoding each (`TrialRecord` costs about a tenth of a
/// millisecond a row to decode).
public struct TrialRow: Sendable {
    public var name: String
    public var sequence: Int
    public var state: String
    public var reason: String
    public var message: String
    /// `[{"name": …, "value": …}]`
    public var assignmentsJSON: String
    /// `[{"name", "min", "max", "latest", "count"}]`
    public var observationJSON: String
    public var objectiveValue: Double?
    public var exitCode: Int?
    /// As stored: `yyyy-MM-dd HH:mm:ss.SSS`, UTC.
    public var startedAt: String?
    public var completedAt: String?
}

/// What changed in an experiment between two cursors.
public struct ExperimentChanges: Sendable {
    /// New trials and trials whose state or observation changed, in creation order.
    public var trials: [TrialRecord]
    /// New numeric reports, in the order they were stored.
    public var reports: [StoredReport]
    /// Whether the experiment logged an event (its status, budget or a trial changed).
    public var logged: Bool
    /// Where the next read starts.
    public var cursor: ChangeCursor

    public var isEmpty: Bool { trials.isEmpty && reports.isEmpty && !logged }

    public init(trials: [TrialRecord], reports: [StoredReport], logged: Bool, cursor: ChangeCursor) {
        self.trials = trials
        self.reports = reports
        self.logged = logged
        self.cursor = cursor
    }
}

extension Store {
    /// Where a read of changes started now would start: the newest event, report and trial ids.
    public func changeCursor() async throws -> ChangeCursor {
        try await writer.read { db in try Self.newestIds(db) }
    }

    private static func newestIds(_ db: Database) throws -> ChangeCursor {
        ChangeCursor(
            event: try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM event") ?? 0,
            metric: try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM metric") ?? 0,
            trial: try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM trial") ?? 0)
    }

    /// Every trial of the experiment (with `trialId`, that one) as stored, and its reports (with
    /// `metric`, of that metric), read in one transaction, with the cursor to read changes from after.
    public func snapshot(of experimentId: Int64, metric: String? = nil,
                         trialId: Int64? = nil) async throws -> (trials: [TrialRow], reports: [StoredReport], cursor: ChangeCursor) {
        try await writer.read { db in
            let now = try Self.newestIds(db)
            var arguments: StatementArguments = [experimentId]
            var filter = ""
            if let trialId {
                filter = " AND id = ?"
                _ = arguments.append(contentsOf: [trialId])
            }
            let rows = try Row.fetchCursor(db, sql: """
                SELECT name, sequence, state, reason, message, assignments, observation, objectiveValue, exitCode, startedAt, completedAt
                FROM trial WHERE experimentId = ?\(filter) ORDER BY sequence
                """, arguments: arguments)
            var trials: [TrialRow] = []
            while let row = try rows.next() {
                trials.append(TrialRow(name: row[0], sequence: row[1], state: row[2], reason: row[3], message: row[4], assignmentsJSON: row[5],
                                       observationJSON: row[6], objectiveValue: row[7], exitCode: row[8], startedAt: row[9], completedAt: row[10]))
            }
            return (trials, try Self.reports(db, of: experimentId, after: 0, metric: metric, trialId: trialId), now)
        }
    }

    /// What changed in the experiment after `cursor`, read in one transaction: from `.start`, every
    /// trial and report. With `metric`, only that metric's reports; with `trialId`, only that trial
    /// and its reports.
    public func changes(of experimentId: Int64, since cursor: ChangeCursor, metric: String? = nil,
                        trialId: Int64? = nil) async throws -> ExperimentChanges {
        try await writer.read { db in
            // The newest ids first: the rest of the transaction sees nothing beyond them.
            let now = try Self.newestIds(db)
            let logged = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM event WHERE experimentId = ? AND id > ?)",
                                           arguments: [experimentId, cursor.event]) ?? false
            var trialFilter = ""
            var arguments: StatementArguments = [experimentId, cursor.trial, experimentId, cursor.event, cursor.metric]
            if let trialId {
                trialFilter = " AND id = ?"
                _ = arguments.append(contentsOf: [trialId])
            }
            let trials = try TrialRecord.fetchAll(db, sql: """
                SELECT * FROM trial WHERE experimentId = ? AND (id > ?
                    OR name IN (SELECT trialName FROM event WHERE experimentId = ? AND id > ? AND trialName IS NOT NULL)
                    OR id IN (SELECT DISTINCT trialId FROM metric WHERE id > ?))\(trialFilter)
                ORDER BY sequence
                """, arguments: arguments)
            let reports = try Self.reports(db, of: experimentId, after: cursor.metric, metric: metric, trialId: trialId)
            return ExperimentChanges(trials: trials, reports: reports, logged: logged, cursor: now)
        }
    }

    /// The experiment's numeric reports stored after report id `after`.
    private static func reports(_ db: Database, of experimentId: Int64, after: Int64, metric: String?, trialId: Int64?) throws -> [StoredReport] {
        // From the start, the experiment's trials lead (an index finds their reports); after it, the
        // few new reports do (their ids are a range of the table).
        let join = after == 0 ? "trial JOIN metric" : "metric CROSS JOIN trial"
        var arguments: StatementArguments = [after, experimentId]
        var filter = ""
        if let metric {
            filter += " AND metric.name = ?"
            _ = arguments.append(contentsOf: [metric])
        }
        if let trialId {
            filter += " AND trial.id = ?"
            _ = arguments.append(contentsOf: [trialId])
        }
        return try Row.fetchAll(db, sql: """
            SELECT metric.id, trial.name, metric.name, metric.step, metric.value FROM \(join) ON trial.id = metric.trialId
            WHERE metric.id > ? AND trial.experimentId = ? AND metric.value IS NOT NULL\(filter) ORDER BY metric.id
            """, arguments: arguments).compactMap { row -> StoredReport? in
                let value: Double = row[4]
                // JSON has no infinities.
                guard value.isFinite else { return nil }
                return StoredReport(id: row[0], trialName: row[1], name: row[2], step: row[3], value: value)
            }
    }
}

/// Tells whether anything was committed to the store since the last look, from any process:
/// SQLite's `PRAGMA data_version`, read on a connection of its own that never writes. An in-memory
/// store cannot be watched this way and always counts as changed.
public final class StoreChangeProbe: Sendable {
    private let connection: DatabaseQueue?
    private let reads = Mutex(0)

    public init(_ store: Store) throws {
        if let path = store.path {
            var configuration = Configuration()
            configuration.readonly = true
            configuration.busyMode = .timeout(10)
            connection = try DatabaseQueue(path: path, configuration: configuration)
        } else {
            connection = nil
        }
    }

    /// A number that differs from the one the previous call returned when another connection has
    /// committed in between.
    public func version() async throws -> Int {
        guard let connection else { return reads.withLock { $0 += 1; return $0 } }
        return try await connection.read { db in try Int.fetchOne(db, sql: "PRAGMA data_version") ?? 0 }
    }

    /// `version()` read on the calling thread, for a caller that asks at every request: the pragma
    /// reads the WAL index header and no page, so it takes microseconds and waits for no writer; a
    /// queue hop would cost more than the read. The number never decreases.
    public func versionNow() throws -> Int {
        guard let connection else { return reads.withLock { $0 += 1; return $0 } }
        return try connection.inDatabase { db in try Int.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) ?? 0 }
    }
}
