import Foundation
import GRDB
import GRDBSQLite

/// What the store can throw, with messages a user can act on.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    case experimentExists(String, ExperimentStatus)
    case experimentNotFound(String)
    case trialNotFound(String)
    case cannotOpen(path: String, underlying: String)

    public var description: String {
        switch self {
        case .experimentExists(let name, let status):
            return "experiment \(name) already exists (\(status.rawValue)); delete it first (knob delete \(name)), or choose another metadata.name"
        case .experimentNotFound(let name):
            return "no experiment named \(name); knob list shows the experiments"
        case .trialNotFound(let name):
            return "no trial named \(name)"
        case .cannotOpen(let path, let underlying):
            return "cannot open the database \(path): \(underlying)"
        }
    }

    /// Whether `error` says the disk is full or failing (SQLITE_FULL, SQLITE_IOERR), rather than
    /// something about the data: such a failure may pass once space is back.
    public static func isUnavailable(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode.primaryResultCode == .SQLITE_FULL || error.resultCode.primaryResultCode == .SQLITE_IOERR
    }
}

/// The store has a migration this binary does not know: a newer knob wrote it, and this one
/// leaves it untouched.
public struct NewerStoreError: Error, Sendable, CustomStringConvertible {
    public let path: String
    /// The first unknown migration's name.
    public let migration: String

    public var description: String {
        "this store was written by a newer knob (migration \(migration)); upgrade knob (the store at \(path) was left untouched)"
    }
}

/// A new trial to record: its parameters and what the suggester attached to them.
public struct NewTrial: Sendable, Hashable {
    public var assignments: [ParameterAssignment]
    public var suggesterMetadata: [String: String]

    public init(assignments: [ParameterAssignment], suggesterMetadata: [String: String] = [:]) {
        self.assignments = assignments
        self.suggesterMetadata = suggesterMetadata
    }
}

/// How a trial ended.
public struct TrialEnd: Sendable, Hashable {
    public var state: TrialState
    public var reason: String
    public var message: String
    public var exitCode: Int?
    public var observation: [MetricSummary]
    public var objectiveValue: Double?
    /// Reports read after the trial exited, not stored yet: `finishTrial` stores them, and moves the
    /// trial's log offset to `logOffset`, in the transaction that records the end.
    public var lastReports: [MetricRecord] = []
    public var logOffset: Int64?

    public init(
        state: TrialState, reason: String, message: String, exitCode: Int? = nil,
        observation: [MetricSummary] = [], objectiveValue: Double? = nil
    ) {
        self.state = state
        self.reason = reason
        self.message = message
        self.exitCode = exitCode
        self.observation = observation
        self.objectiveValue = objectiveValue
    }
}

/// knob's SQLite database: experiments, trials, every metric report and the event log.
///
/// WAL mode with a busy timeout; GRDB's pool gives one serialized writer and concurrent readers.
/// Every method is one transaction (a write may share its transaction with the writes waiting beside
/// it, each in a savepoint of its own: `GroupCommit`) and is async, so no caller blocks a cooperative thread.
public struct Store: Sendable {
    public let writer: any DatabaseWriter
    /// The database file; nil for an in-memory store.
    public let path: String?
    /// Told how long each write transaction took (knobd's `/metrics`); nothing by default.
    public var observer: StoreObserver = .none
    /// The writes waiting on one another share a transaction.
    private let group: GroupCommit

    /// How long a write waits for another process's write to end before it fails with SQLITE_BUSY.
    static let busyTimeoutMilliseconds: Int32 = 10_000

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// The database and its companion files are readable by their owner only (0600), whatever the
    /// umask. A store with a migration this binary does not know is refused before anything is
    /// written to it (`NewerStoreError`).
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(TimeInterval(Self.busyTimeoutMilliseconds) / 1000)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        // Processes opening a new database at the same moment (a run and a reader) would both
        // switch it to WAL and apply the migrations: they take turns.
        let lockFD = open(path + ".open-lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if lockFD >= 0 {
            fchmod(lockFD, 0o600)
            flock(lockFD, LOCK_EX)
        }
        defer { if lockFD >= 0 { close(lockFD) } }
        if let migration = try Self.unknownMigration(path) {
            throw NewerStoreError(path: path, migration: migration)
        }
        Self.makePrivate(path)
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            try Migrations.migrator.migrate(pool)
            writer = pool
            group = GroupCommit(pool, busyTimeout: Self.busyTimeoutMilliseconds)
        } catch {
            throw StoreError.cannotOpen(path: path, underlying: "\(error)")
        }
        self.path = path
    }

    /// An in-memory database, for tests.
    public init() throws {
        let queue = try DatabaseQueue()
        try Migrations.migrator.migrate(queue)
        writer = queue
        group = GroupCommit(queue, busyTimeout: 0)
        path = nil
    }

    /// The first migration recorded in the existing database at `path` that this binary does not
    /// know, read through a read-only connection (nothing is written); nil when there is none or
    /// no database yet.
    static func unknownMigration(_ path: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            return try queue.read { db -> String? in
                guard try db.tableExists("grdb_migrations") else { return nil }
                let known = Set(Migrations.migrator.migrations)
                return try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations").sorted().first { !known.contains($0) }
            }
        } catch {
            throw StoreError.cannotOpen(path: path, underlying: "\(error)")
        }
    }

    /// Creates the database file readable by its owner only, or tightens an existing one and its
    /// companions. SQLite gives the -wal and -shm files the mode of the database file.
    static func makePrivate(_ path: String) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 {
            fchmod(fd, 0o600)
            close(fd)
        }
        for companion in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: path + companion) {
            chmod(path + companion, 0o600)
        }
    }

    /// Runs `updates` in one write transaction, and tells the observer how long it took, from asking
    /// for the writer (waiting for it included) to the commit or the failure.
    private func write<T: Sendable>(_ kind: StoreTransactionKind, _ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let started = ContinuousClock.now
        defer { observer.transaction(kind, ContinuousClock.now - started) }
        return try await group.write(updates)
    }

    // MARK: Experiments

    /// Records a new experiment; fails if the name is taken.
    @discardableResult
    public func createExperiment(_ experiment: ExperimentRecord) async throws -> ExperimentRecord {
        try await write(.experiment) { db in
            if let existing = try ExperimentRecord.filter(ExperimentRecord.Columns.name == experiment.name).fetchOne(db) {
                throw StoreError.experimentExists(existing.name, existing.status)
            }
            var record = experiment
            try record.insert(db)
            try Self.log(db, EventRecord(experimentId: record.id!, kind: "ExperimentCreated", message: "experiment \(record.name) created"))
            return record
        }
    }

    public func experiment(named name: String) async throws -> ExperimentRecord? {
        try await writer.read { db in
            try ExperimentRecord.filter(ExperimentRecord.Columns.name == name).fetchOne(db)
        }
    }

    /// The experiment named `name`, or `StoreError.experimentNotFound`.
    public func requireExperiment(_ name: String) async throws -> ExperimentRecord {
        guard let experiment = try await experiment(named: name) else { throw StoreError.experimentNotFound(name) }
        return experiment
    }

    /// Every experiment, newest first.
    public func experiments() async throws -> [ExperimentRecord] {
        try await writer.read { db in
            try ExperimentRecord.order(ExperimentRecord.Columns.createdAt.desc, ExperimentRecord.Columns.id.desc).fetchAll(db)
        }
    }

    /// Marks the experiment Running (again, when resumed).
    public func markExperimentRunning(_ experimentId: Int64, message: String = "Experiment is running") async throws {
        try await write(.experiment) { db in
            // Already running (the controller of an experiment the API just started, or one resumed
            // after a restart): nothing changes, and no second start is logged.
            guard var record = try ExperimentRecord.fetchOne(db, key: experimentId), record.status != .running else { return }
            let resumed = record.startedAt != nil
            record.status = .running
            record.reason = "ExperimentRunning"
            record.message = message
            record.completedAt = nil
            if record.startedAt == nil { record.startedAt = Date() }
            try record.update(db)
            try Self.log(db, EventRecord(experimentId: experimentId, kind: resumed ? "ExperimentResumed" : "ExperimentStarted", message: message))
        }
    }

    /// Records the end of an experiment (and forgets any unfinished start of it).
    public func finishExperiment(_ experimentId: Int64, status: ExperimentStatus, reason: String, message: String) async throws {
        try await write(.experiment) { db in
            guard var record = try ExperimentRecord.fetchOne(db, key: experimentId) else { return }
            record.status = status
            record.reason = reason
            record.message = message
            record.completedAt = Date()
            try record.update(db)
            // An ended experiment has no start under way: a later resume begins with a clean count.
            try db.execute(sql: "DELETE FROM startAttempt WHERE experimentId = ?", arguments: [experimentId])
            try Self.log(db, EventRecord(experimentId: experimentId, kind: "Experiment\(status.rawValue)", message: "\(reason): \(message)"))
        }
    }

    /// Records an edited spec (e.g. a new budget), with an event that says what changed.
    public func updateSpec(_ experimentId: Int64, specJSON: String, event: String) async throws {
        try await write(.experiment) { db in
            try db.execute(sql: "UPDATE experiment SET specJSON = ? WHERE id = ?", arguments: [specJSON, experimentId])
            try Self.log(db, EventRecord(experimentId: experimentId, kind: "BudgetEdited", message: event))
        }
    }

    /// Removes an experiment with its trials, metrics and events.
    public func deleteExperiment(named name: String) async throws {
        try await write(.experiment) { db in
            guard try ExperimentRecord.filter(ExperimentRecord.Columns.name == name).deleteAll(db) > 0 else {
                throw StoreError.experimentNotFound(name)
            }
        }
    }

    // MARK: Starts

    /// Records that a controller is about to start driving the experiment, and returns how many
    /// earlier starts never completed (each one a process that died while starting it) and when
    /// the last of them began.
    public func recordStartAttempt(_ experimentId: Int64) async throws -> (unfinished: Int, lastStartedAt: Date?) {
        try await write(.experiment) { db in
            let row = try Row.fetchOne(db, sql: "SELECT count, lastStartedAt FROM startAttempt WHERE experimentId = ?",
                                       arguments: [experimentId])
            let unfinished: Int = row?["count"] ?? 0
            let last = try row.flatMap { try StoredDate.decode($0, "lastStartedAt") }
            try db.execute(sql: """
                INSERT INTO startAttempt (experimentId, count, lastStartedAt) VALUES (?, 1, ?)
                ON CONFLICT (experimentId) DO UPDATE SET count = count + 1, lastStartedAt = excluded.lastStartedAt
                """, arguments: [experimentId, Date()])
            return (unfinished, last)
        }
    }

    /// How many starts of the experiment's controller are recorded and not completed.
    public func unfinishedStarts(_ experimentId: Int64) async throws -> Int {
        try await writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count FROM startAttempt WHERE experimentId = ?", arguments: [experimentId]) ?? 0
        }
    }

    /// Records that the controller's start completed (or that it stopped cleanly).
    public func clearStartAttempts(_ experimentId: Int64) async throws {
        try await write(.experiment) { db in
            try db.execute(sql: "DELETE FROM startAttempt WHERE experimentId = ?", arguments: [experimentId])
        }
    }

    // MARK: Trials

    /// Records new trials as Pending, numbered after the experiment's last one, in one transaction.
    public func createTrials(_ trials: [NewTrial], for experiment: ExperimentRecord) async throws -> [TrialRecord] {
        guard let experimentId = experiment.id else { return [] }
        return try await write(.trial) { db in
            let last = try Int.fetchOne(db.cachedStatement(sql: "SELECT MAX(sequence) FROM trial WHERE experimentId = ?"), arguments: [experimentId]) ?? 0
            let now = Date()
            let created = StoredDate.text(now)
            let insert = try db.cachedStatement(sql: """
                INSERT INTO trial (experimentId, sequence, name, assignments, suggesterMetadata, state, reason, message, runnerHandle,
                observation, createdAt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            return try trials.enumerated().map { offset, trial in
                let sequence = last + offset + 1
                var record = TrialRecord(
                    experimentId: experimentId, sequence: sequence, name: "\(experiment.name)-\(sequence)",
                    assignments: trial.assignments, suggesterMetadata: trial.suggesterMetadata,
                    state: .pending, reason: "TrialCreated", message: "Trial is created", runnerHandle: [:],
                    logPath: nil, logOffset: 0, observation: [], objectiveValue: nil, exitCode: nil, createdAt: now)
                // The columns as the record's own encoding writes them, through a statement the connection keeps.
                try insert.execute(arguments: [
                    experimentId, sequence, record.name, try TrialRecord.columnText(trial.assignments, "assignments"),
                    try TrialRecord.columnText(trial.suggesterMetadata, "suggesterMetadata"), TrialState.pending, record.reason, record.message, "{}",
                    "[]", created,
                ])
                record.id = db.lastInsertedRowID
                return record
            }
        }
    }

    /// Records that a trial's process (or pod) started, with what finds it again.
    public func markRunning(_ trialId: Int64, handle: [String: String], logPath: String) async throws {
        // The handle's column text is what the record's own encoding writes (sorted keys).
        let handleJSON = try TrialRecord.columnText(handle, "runnerHandle")
        try await write(.trial) { db in
            // Only the columns that change, set in place: a trial starts as often as it ends, and reading the whole
            // row back and writing it again cost more than SQLite's own work.
            let update = try db.cachedStatement(sql: """
                UPDATE trial SET state = ?, reason = 'TrialRunning', message = 'Trial is running', runnerHandle = ?, logPath = ?,
                startedAt = ? WHERE id = ? RETURNING experimentId, name
                """)
            guard let row = try Row.fetchOne(update, arguments: [TrialState.running, handleJSON, logPath, StoredDate.text(Date()), trialId]) else { return }
            let name: String = row[1]
            let description = handle.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            try Self.log(db, EventRecord(experimentId: row[0], kind: "TrialStarted", trialName: name,
                                         message: "trial \(name) started (\(description))"))
        }
    }

    /// Records metric reports read from a trial's log, and how far the log has been read; returns
    /// the row id of the first report (the batch's ids follow it in order).
    @discardableResult
    public func appendReports(_ trialId: Int64, reports: [MetricRecord], logOffset: Int64,
                              observation: [MetricSummary]? = nil) async throws -> Int64? {
        // The running trial's observation so far, so that readers see its latest values while it runs.
        let observationJSON = try observation.map { try TrialRecord.columnText($0, "observation") }
        return try await write(.reports) { db in
            try Self.storeReports(reports, trialId: trialId, logOffset: logOffset, observationJSON: observationJSON, in: db)
        }
    }

    /// Inserts reports and moves the trial's log offset past them (with its observation so far, when given), in the
    /// open transaction; the first report's row id.
    @discardableResult
    private static func storeReports(_ reports: [MetricRecord], trialId: Int64, logOffset: Int64, observationJSON: String?,
                                     in db: Database) throws -> Int64? {
        // Prepared statements for the whole batch, in the same transaction as the offset.
        let first = try insertReports(reports, trialId: trialId, in: db)
        if let observationJSON {
            try db.cachedStatement(sql: "UPDATE trial SET logOffset = ?, observation = ? WHERE id = ?").execute(arguments: [logOffset, observationJSON, trialId])
        } else {
            try db.cachedStatement(sql: "UPDATE trial SET logOffset = ? WHERE id = ?").execute(arguments: [logOffset, trialId])
        }
        return first
    }

    /// Rows per statement of a batch's insert: SQLite's cost per statement run (its start, its end, its cursors) is
    /// shared by that many rows.
    static let rowsPerInsert = 32

    /// The metric table's insert of `rows` rows.
    static func metricInsertSQL(rows: Int) -> String {
        "INSERT INTO metric (trialId, name, value, text, step, timestamp) VALUES "
            + Array(repeating: "(?, ?, ?, ?, ?, ?)", count: rows).joined(separator: ", ")
    }

    /// Inserts `reports`, `rowsPerInsert` rows per statement (the rest one by one), binding each row's values straight
    /// to SQLite: a chatty trainer's reports are most of what the store writes, and a row's arguments boxed as database
    /// values cost as much as SQLite's own work. The reports of one read share their time, unless their lines carried
    /// one: its text is made once per run of equal times. Returns the first row's id (the others follow it in order).
    @discardableResult
    private static func insertReports(_ reports: [MetricRecord], trialId: Int64, in db: Database) throws -> Int64? {
        guard !reports.isEmpty else { return nil }
        let many = try db.cachedStatement(sql: metricInsertSQL(rows: rowsPerInsert))
        let one = try db.cachedStatement(sql: metricInsertSQL(rows: 1))
        // SQLite copies what it is given (SQLITE_TRANSIENT), so the Swift strings need not outlive the call.
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        var time: (date: Date, text: String)?
        var first: Int64?
        var start = reports.startIndex
        while start < reports.endIndex {
            let statement = reports.endIndex - start >= rowsPerInsert ? many : one
            let count = statement === many ? rowsPerInsert : 1
            let handle = statement.sqliteStatement
            sqlite3_reset(handle)
            for (row, report) in reports[start..<(start + count)].enumerated() {
                if time?.date != report.timestamp {
                    time = (report.timestamp, StoredDate.text(report.timestamp))
                }
                let column = Int32(row * 6)
                sqlite3_bind_int64(handle, column + 1, trialId)
                sqlite3_bind_text(handle, column + 2, report.name, -1, transient)
                if let value = report.value { sqlite3_bind_double(handle, column + 3, value) } else { sqlite3_bind_null(handle, column + 3) }
                if let text = report.text { sqlite3_bind_text(handle, column + 4, text, -1, transient) } else { sqlite3_bind_null(handle, column + 4) }
                sqlite3_bind_int64(handle, column + 5, Int64(report.step))
                sqlite3_bind_text(handle, column + 6, time!.text, -1, transient)
            }
            let code = sqlite3_step(handle)
            defer {
                sqlite3_reset(handle)
                sqlite3_clear_bindings(handle)
            }
            guard code == SQLITE_DONE else {
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                                    sql: statement.sql)
            }
            if first == nil { first = sqlite3_last_insert_rowid(db.sqliteConnection) - Int64(count - 1) }
            start += count
        }
        return first
    }

    /// Records how a running trial will end before it is stopped, with an event; `false` when the
    /// trial has ended or already has a decided end (the first decision stands).
    public func decideEnd(_ trialId: Int64, _ stopping: TrialStopping) async throws -> Bool {
        try await write(.trial) { db in
            guard let record = try TrialRecord.fetchOne(db, key: trialId), !record.state.isFinished, record.stopping == nil else { return false }
            let json = String(decoding: try JSONEncoder().encode(stopping), as: UTF8.self)
            try db.execute(sql: "UPDATE trial SET stopping = ? WHERE id = ?", arguments: [json, trialId])
            try Self.log(db, EventRecord(experimentId: record.experimentId, kind: stopping.state == .earlyStopped ? "EarlyStopDecided" : "StopDecided", trialName: record.name,
                                         message: "stopping trial \(record.name): \(stopping.message)"))
            return true
        }
    }

    /// Every numeric report of metric `name` by the experiment's trials, in the order they were
    /// stored: (trial id, row id, step, value).
    public func reports(of experimentId: Int64, metric name: String) async throws -> [(trialId: Int64, id: Int64, step: Int, value: Double)] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT metric.trialId, metric.id, metric.step, metric.value FROM metric JOIN trial ON trial.id = metric.trialId
                WHERE trial.experimentId = ? AND metric.name = ? AND metric.value IS NOT NULL ORDER BY metric.id
                """, arguments: [experimentId, name]).map { ($0[0], $0[1], $0[2], $0[3]) }
        }
    }

    /// Records how a trial ended. A trial that has already ended keeps its first end. The end's
    /// `lastReports` and `logOffset` are stored first, as `appendReports` stores them, in the same transaction.
    @discardableResult
    public func finishTrial(_ trialId: Int64, _ end: TrialEnd) async throws -> TrialRecord? {
        let observationJSON = try TrialRecord.columnText(end.observation, "observation")
        return try await write(.trial) { db in
            if let logOffset = end.logOffset {
                try Self.storeReports(end.lastReports, trialId: trialId, logOffset: logOffset, observationJSON: nil, in: db)
            } else {
                try Self.insertReports(end.lastReports, trialId: trialId, in: db)
            }
            // The changed columns set in place, and the row as it then is (see markRunning).
            let update = try db.cachedStatement(sql: """
                UPDATE trial SET state = ?, reason = ?, message = ?, exitCode = ?, observation = ?, objectiveValue = ?, completedAt = ?
                WHERE id = ? AND state IN (?, ?) RETURNING *
                """)
            guard let record = try TrialRecord.fetchOne(update, arguments: [
                end.state, end.reason, end.message, end.exitCode, observationJSON, end.objectiveValue, StoredDate.text(Date()), trialId,
                TrialState.pending, TrialState.running,
            ]) else { return nil }
            try Self.log(db, EventRecord(experimentId: record.experimentId, kind: "Trial\(end.state.rawValue)", trialName: record.name,
                                         message: "trial \(record.name) \(end.state.eventVerb): \(end.message)"))
            return record
        }
    }

    /// A page of an experiment's trials in creation order: at most `limit` after the trial
    /// numbered `afterSequence`, only those in `state` when given; and whether more follow.
    public func trials(of experimentId: Int64, state: TrialState? = nil, afterSequence: Int = 0,
                       limit: Int) async throws -> (trials: [TrialRecord], more: Bool) {
        try await writer.read { db in
            var request = TrialRecord.filter(TrialRecord.Columns.experimentId == experimentId && TrialRecord.Columns.sequence > afterSequence)
            if let state { request = request.filter(TrialRecord.Columns.state == state) }
            let rows = try request.order(TrialRecord.Columns.sequence).limit(limit + 1).fetchAll(db)
            return (Array(rows.prefix(limit)), rows.count > limit)
        }
    }

    /// A page of experiments, newest first: at most `limit` created before the one with id
    /// `beforeId`; and whether more follow.
    public func experiments(beforeId: Int64?, limit: Int) async throws -> (experiments: [ExperimentRecord], more: Bool) {
        try await writer.read { db in
            var request = ExperimentRecord.all()
            if let beforeId { request = request.filter(ExperimentRecord.Columns.id < beforeId) }
            let rows = try request.order(ExperimentRecord.Columns.id.desc).limit(limit + 1).fetchAll(db)
            return (Array(rows.prefix(limit)), rows.count > limit)
        }
    }

    public func trials(of experimentId: Int64) async throws -> [TrialRecord] {
        try await writer.read { db in
            try TrialRecord.filter(TrialRecord.Columns.experimentId == experimentId).order(TrialRecord.Columns.sequence).fetchAll(db)
        }
    }

    public func trial(named name: String) async throws -> TrialRecord? {
        try await writer.read { db in
            try TrialRecord.filter(TrialRecord.Columns.name == name).fetchOne(db)
        }
    }

    /// Every report of a trial, in the order they were read.
    public func metrics(ofTrial trialId: Int64) async throws -> [MetricRecord] {
        try await writer.read { db in
            try MetricRecord.filter(MetricRecord.Columns.trialId == trialId).order(Column("id")).fetchAll(db)
        }
    }

    /// The experiment's trial with the best objective (ties: the earliest), if any has one.
    public func optimalTrial(of experiment: ExperimentRecord) async throws -> TrialRecord? {
        guard let experimentId = experiment.id else { return nil }
        return try await writer.read { db in
            let objective = TrialRecord.Columns.objectiveValue
            return try TrialRecord
                .filter(TrialRecord.Columns.experimentId == experimentId && objective != nil)
                .order(experiment.maximizes ? objective.desc : objective.asc, TrialRecord.Columns.sequence)
                .fetchOne(db)
        }
    }

    /// Number of trials in each state.
    public func trialCounts(of experimentId: Int64) async throws -> [TrialState: Int] {
        try await writer.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT state, COUNT(*) FROM trial WHERE experimentId = ? GROUP BY state",
                                        arguments: [experimentId])
            var counts: [TrialState: Int] = [:]
            for row in rows {
                if let state = TrialState(rawValue: row[0]) { counts[state] = row[1] }
            }
            return counts
        }
    }

    // MARK: Events

    public func appendEvent(_ event: EventRecord) async throws {
        try await write(.event) { db in try Self.log(db, event) }
    }

    private static func log(_ db: Database, _ event: EventRecord) throws {
        // A prepared statement kept by the connection: every trial logs its start and its end.
        let insert = try db.cachedStatement(sql: "INSERT INTO event (experimentId, time, kind, trialName, message) VALUES (?, ?, ?, ?, ?)")
        try insert.execute(arguments: [event.experimentId, StoredDate.text(event.time), event.kind, event.trialName, event.message])
    }

    /// The experiment's events, oldest first; the last `limit` when given.
    public func events(of experimentId: Int64, limit: Int? = nil) async throws -> [EventRecord] {
        try await writer.read { db in
            var request = EventRecord.filter(EventRecord.Columns.experimentId == experimentId).order(EventRecord.Columns.id.desc)
            if let limit { request = request.limit(limit) }
            return try request.fetchAll(db).reversed()
        }
    }
}
