import Foundation
import GRDB
import Synchronization
import Testing
@testable import Store

@Suite struct StoreTests {
    func experiment(_ name: String = "exp", objectiveType: String = "maximize") -> ExperimentRecord {
        ExperimentRecord(name: name, specText: "spec", specJSON: "{}", seed: 42, objectiveType: objectiveType,
                         objectiveMetricName: "accuracy", directory: "/tmp")
    }

    func newTrials(_ count: Int) -> [NewTrial] {
        (0..<count).map { NewTrial(assignments: [ParameterAssignment(name: "lr", value: "0.\($0 + 1)")], suggesterMetadata: ["i": "\($0)"]) }
    }

    func tempDatabase() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("knob-store-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent("knob.db").path
    }

    @Test func experimentNamesAreUnique() async throws {
        let store = try Store()
        let created = try await store.createExperiment(experiment())
        #expect(created.id != nil)
        await #expect(throws: StoreError.self) { try await store.createExperiment(experiment()) }
        #expect(try await store.experiments().count == 1)
        #expect(UInt64(bitPattern: try await store.requireExperiment("exp").seed) == 42)
        await #expect(throws: StoreError.self) { try await store.requireExperiment("nope") }
    }

    @Test func trialsAreNumberedAfterTheLastOneAndKeepTheirAssignments() async throws {
        let store = try Store()
        let exp = try await store.createExperiment(experiment("mnist"))
        let first = try await store.createTrials(newTrials(2), for: exp)
        let second = try await store.createTrials(newTrials(1), for: exp)
        #expect(first.map(\.name) == ["mnist-1", "mnist-2"])
        #expect(second.map(\.sequence) == [3])
        let stored = try await store.trials(of: exp.id!)
        #expect(stored.map(\.state) == [.pending, .pending, .pending])
        #expect(stored[1].assignments == [ParameterAssignment(name: "lr", value: "0.2")])
        #expect(stored[1].suggesterMetadata == ["i": "1"])
    }

    @Test func reportsAndLogOffsetAreRecordedTogether() async throws {
        let store = try Store()
        let exp = try await store.createExperiment(experiment())
        let trial = try await store.createTrials(newTrials(1), for: exp)[0]
        try await store.markRunning(trial.id!, handle: ["pid": "12"], logPath: "/tmp/x.log")
        let now = Date()
        try await store.appendReports(trial.id!, reports: [
            MetricRecord(trialId: 0, name: "accuracy", value: 0.5, text: nil, step: 1, timestamp: now),
            MetricRecord(trialId: 0, name: "loss", value: nil, text: "nan", step: 1, timestamp: now),
        ], logOffset: 120)
        let metrics = try await store.metrics(ofTrial: trial.id!)
        #expect(metrics.map(\.name) == ["accuracy", "loss"])
        #expect(metrics[0].trialId == trial.id && metrics[1].text == "nan" && metrics[1].value == nil)
        let reloaded = try await store.trial(named: trial.name)
        #expect(reloaded?.logOffset == 120 && reloaded?.state == .running && reloaded?.runnerHandle == ["pid": "12"])
        // Each report keeps its own time, shared or not (to the millisecond the store keeps).
        let times = [now, now, now.addingTimeInterval(-3600), now, Date(timeIntervalSince1970: 1_767_225_601.5)]
        try await store.appendReports(trial.id!, reports: times.enumerated().map { i, time in
            MetricRecord(trialId: 0, name: "accuracy", value: Double(i), text: nil, step: 2 + i, timestamp: time)
        }, logOffset: 200)
        let stored = try await store.metrics(ofTrial: trial.id!).suffix(5)
        #expect(zip(stored, times).allSatisfy { abs($0.timestamp.timeIntervalSince($1)) < 0.001 }, "\(stored.map(\.timestamp))")
    }

    /// A batch larger than one statement's rows (and not a multiple of them) is stored whole, in order, each row as
    /// given (numbers, text values, steps, times), and the first id returned is the batch's first row's.
    @Test func aBatchOfManyStatementsKeepsEveryRowInOrder() async throws {
        let store = try Store()
        let exp = try await store.createExperiment(experiment())
        let trial = try await store.createTrials(newTrials(1), for: exp)[0]
        let start = Date(timeIntervalSince1970: 1_767_225_600)
        let count = Store.rowsPerInsert * 2 + 5
        let reports = (0..<count).map { i in
            MetricRecord(trialId: 0, name: i % 2 == 0 ? "loss" : "accuracy", value: i % 7 == 3 ? nil : Double(i) / 4,
                         text: i % 7 == 3 ? "nan" : nil, step: i / 2, timestamp: start.addingTimeInterval(Double(i / 10)))
        }
        let before = try await store.appendReports(trial.id!, reports: [reports[0]], logOffset: 1)
        let first = try await store.appendReports(trial.id!, reports: Array(reports.dropFirst()), logOffset: 2)
        #expect(first == before.map { $0 + 1 })
        let stored = try await store.metrics(ofTrial: trial.id!)
        #expect(stored.count == count && stored.compactMap(\.id) == stored.compactMap(\.id).sorted() && stored[1].id == first)
        for (row, report) in zip(stored, reports) {
            #expect(row.trialId == trial.id && row.name == report.name && row.value == report.value && row.text == report.text
                    && row.step == report.step && abs(row.timestamp.timeIntervalSince(report.timestamp)) < 0.001, "\(row)")
        }
        #expect(try await store.appendReports(trial.id!, reports: [], logOffset: 3) == nil)
        #expect(try await store.trial(named: trial.name)?.logOffset == 3)
    }

    @Test func aTrialEndsOnceAndTheOptimalTrialFollowsTheObjectiveDirection() async throws {
        for (type, expected) in [("maximize", "e-2"), ("minimize", "e-1")] {
            let store = try Store()
            let exp = try await store.createExperiment(experiment("e", objectiveType: type))
            let trials = try await store.createTrials(newTrials(4), for: exp)
            #expect(try await store.optimalTrial(of: exp) == nil)
            try await store.finishTrial(trials[0].id!, TrialEnd(state: .succeeded, reason: "ok", message: "", objectiveValue: 0.2))
            try await store.finishTrial(trials[1].id!, TrialEnd(state: .succeeded, reason: "ok", message: "", objectiveValue: 0.9))
            try await store.finishTrial(trials[2].id!, TrialEnd(state: .failed, reason: "Error", message: "exited with code 3"))
            // A second end does not overwrite the first.
            let again = try await store.finishTrial(trials[0].id!, TrialEnd(state: .killed, reason: "Killed", message: ""))
            #expect(again == nil)
            #expect(try await store.trial(named: "e-1")?.state == .succeeded)
            #expect(try await store.optimalTrial(of: exp)?.name == expected)
            let counts = try await store.trialCounts(of: exp.id!)
            #expect(counts == [.succeeded: 2, .failed: 1, .pending: 1])
        }
    }

    @Test func experimentLifecycleIsLoggedAsEvents() async throws {
        let store = try Store()
        let exp = try await store.createExperiment(experiment())
        try await store.markExperimentRunning(exp.id!)
        let trial = try await store.createTrials(newTrials(1), for: exp)[0]
        try await store.markRunning(trial.id!, handle: ["pid": "1"], logPath: "/x")
        try await store.finishTrial(trial.id!, TrialEnd(state: .failed, reason: "Error", message: "exited with code 3"))
        try await store.finishExperiment(exp.id!, status: .failed, reason: "MaxFailedTrialsReached", message: "1 trials failed")
        let events = try await store.events(of: exp.id!)
        #expect(events.map(\.kind) == ["ExperimentCreated", "ExperimentStarted", "TrialStarted", "TrialFailed", "ExperimentFailed"])
        #expect(events[3].message.contains("exited with code 3"))
        #expect(try await store.events(of: exp.id!, limit: 2).map(\.kind) == ["TrialFailed", "ExperimentFailed"])
        let finished = try await store.requireExperiment("exp")
        #expect(finished.status == .failed && finished.completedAt != nil)
    }

    @Test func aStartIsLoggedOnceAndAResumeOnlyAfterAnEnd() async throws {
        let store = try Store()
        let exp = try await store.createExperiment(experiment())
        try await store.markExperimentRunning(exp.id!)
        try await store.markExperimentRunning(exp.id!)  // its controller, right after the API started it
        try await store.finishExperiment(exp.id!, status: .stopped, reason: "StoppedByUser", message: "stopped")
        try await store.markExperimentRunning(exp.id!, message: "Experiment is running again")
        try await store.markExperimentRunning(exp.id!)
        let kinds = try await store.events(of: exp.id!).map(\.kind)
        #expect(kinds == ["ExperimentCreated", "ExperimentStarted", "ExperimentStopped", "ExperimentResumed"], "\(kinds)")
    }

    /// Reports read after a trial exited are stored with its end: the rows, the log offset and the end
    /// in one transaction; they are stored even when the trial had already ended, as appendReports stores them.
    @Test func theLastReportsAreStoredWithTheEndInOneTransaction() async throws {
        let store = try Store()
        let exp = try await store.createExperiment(experiment())
        let trials = try await store.createTrials(newTrials(2), for: exp)
        try await store.markRunning(trials[0].id!, handle: ["pid": "12"], logPath: "/tmp/x.log")
        try await store.appendReports(trials[0].id!, reports: [MetricRecord(trialId: 0, name: "accuracy", value: 0.5, text: nil, step: 1, timestamp: Date())],
                                      logOffset: 40)
        let commits = GroupCommitTests.Commits()
        store.writer.add(transactionObserver: commits)
        var end = TrialEnd(state: .succeeded, reason: "TrialSucceeded", message: "accuracy=0.75", exitCode: 0,
                           observation: [MetricSummary(name: "accuracy", min: 0.5, max: 0.75, latest: 0.75, count: 3)], objectiveValue: 0.75)
        end.lastReports = [MetricRecord(trialId: 0, name: "accuracy", value: 0.7, text: nil, step: 2, timestamp: Date()),
                           MetricRecord(trialId: 0, name: "accuracy", value: 0.75, text: nil, step: 3, timestamp: Date())]
        end.logOffset = 120
        let ended = try #require(try await store.finishTrial(trials[0].id!, end))
        #expect(commits.count.withLock { $0 } == 1)
        #expect(ended.logOffset == 120 && ended.state == .succeeded && ended.objectiveValue == 0.75)
        #expect(try await store.trial(named: ended.name) == ended, "the record returned is the row as stored")
        #expect(try await store.metrics(ofTrial: trials[0].id!).map(\.value) == [0.5, 0.7, 0.75])
        // A trial that has ended keeps its end; reports that come with a second end are kept as appendReports keeps them.
        var again = TrialEnd(state: .failed, reason: "Error", message: "late")
        again.lastReports = [MetricRecord(trialId: 0, name: "accuracy", value: 0.1, text: nil, step: 4, timestamp: Date())]
        again.logOffset = 130
        #expect(try await store.finishTrial(trials[0].id!, again) == nil)
        let kept = try await store.trial(named: ended.name)
        #expect(kept?.state == .succeeded && kept?.logOffset == 130)
        #expect(try await store.metrics(ofTrial: trials[0].id!).count == 4)
        // An end without reports leaves the offset as it was.
        try await store.markRunning(trials[1].id!, handle: ["pid": "13"], logPath: "/tmp/y.log")
        try await store.appendReports(trials[1].id!, reports: [MetricRecord(trialId: 0, name: "accuracy", value: 0.2, text: nil, step: 1, timestamp: Date())],
                                      logOffset: 77)
        let plain = try await store.finishTrial(trials[1].id!, TrialEnd(state: .succeeded, reason: "TrialSucceeded", message: "", objectiveValue: 0.2))
        #expect(plain?.logOffset == 77)
    }

    /// The indexes each table keeps: none that another one's prefix already gives (each costs a page of the
    /// WAL on every write), and the reads that must stay flat still find theirs.
    @Test func theTablesKeepOnlyTheIndexesTheirReadsUse() async throws {
        let store = try Store()
        let indexes = try await store.writer.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('trial', 'metric', 'event') ORDER BY name")
        }
        #expect(indexes == ["event_on_experimentId", "metric_on_trial_name", "sqlite_autoindex_trial_1", "sqlite_autoindex_trial_2",
                            "trial_on_experiment_objective", "trial_on_experiment_state"])
        let plans = try await store.writer.read { db in
            try [
                "SELECT * FROM trial WHERE experimentId = 1 ORDER BY sequence",
                "SELECT MAX(sequence) FROM trial WHERE experimentId = 1",
                "SELECT * FROM metric WHERE trialId = 1",
                "DELETE FROM metric WHERE trialId = 1",
            ].map { sql in try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN \(sql)").map { $0["detail"] as String }.joined(separator: "; ") }
        }
        for plan in plans { #expect(plan.contains("USING") && !plan.contains("SCAN trial") && !plan.contains("SCAN metric"), "\(plan)") }
    }

    @Test func deletingAnExperimentRemovesItsRows() async throws {
        let store = try Store()
        let exp = try await store.createExperiment(experiment())
        let trial = try await store.createTrials(newTrials(2), for: exp)[0]
        try await store.appendReports(trial.id!, reports: [MetricRecord(trialId: 0, name: "accuracy", value: 1, text: nil, step: 1, timestamp: Date())], logOffset: 1)
        try await store.deleteExperiment(named: "exp")
        let leftovers = try await store.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT (SELECT COUNT(*) FROM trial) + (SELECT COUNT(*) FROM metric) + (SELECT COUNT(*) FROM event)")
        }
        #expect(leftovers == 0)
        await #expect(throws: StoreError.self) { try await store.deleteExperiment(named: "exp") }
    }

    @Test func openersOfANewDatabaseAtTheSameMomentAllSucceed() throws {
        for _ in 0..<5 {
            let path = tempDatabase()
            let failures = Failures()
            DispatchQueue.concurrentPerform(iterations: 6) { _ in
                do { _ = try Store(path: path) } catch { failures.add("\(error)") }
            }
            #expect(failures.all.isEmpty, "\(failures.all)")
        }
    }

    @Test func aFileDatabaseUsesWALAndIsSharedBetweenConnections() async throws {
        let path = tempDatabase()
        let store = try Store(path: path)
        let mode = try await store.writer.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        let exp = try await store.createExperiment(experiment())
        // A second process-like opener sees the data, and reopening keeps the schema (migrations run once).
        let other = try Store(path: path)
        #expect(try await other.requireExperiment("exp").id == exp.id)
        // Writers in both, interleaved, never hit "database is locked".
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<20 {
                let target = i.isMultiple(of: 2) ? store : other
                group.addTask { _ = try await target.createTrials(newTrials(1), for: exp) }
            }
            try await group.waitForAll()
        }
        #expect(try await store.trials(of: exp.id!).map(\.sequence) == Array(1...20))
    }
}

final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []

    func add(_ message: String) {
        lock.lock()
        messages.append(message)
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return messages
    }
}
