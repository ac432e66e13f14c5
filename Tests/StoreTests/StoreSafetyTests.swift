import Foundation
import GRDB
import Testing
@testable import Store

/// What the store does with stores it must not use as they are: one written by a newer knob, one
/// whose files others could read; and the record of controller starts that never completed.
@Suite struct StoreSafetyTests {
    func tempDatabase() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("knob-store-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent("knob.db").path
    }

    func experiment(_ name: String = "exp") -> ExperimentRecord {
        ExperimentRecord(name: name, specText: "spec", specJSON: "{}", seed: 1, objectiveType: "maximize",
                         objectiveMetricName: "accuracy", directory: "/tmp")
    }

    func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func aStoreWithAnUnknownMigrationIsRefusedAndLeftUntouched() async throws {
        let path = tempDatabase()
        do {
            let store = try Store(path: path)
            try await store.createExperiment(experiment())
            try store.writer.close()
        }
        // A newer knob recorded a migration this one does not know.
        do {
            let queue = try DatabaseQueue(path: path)
            try await queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
            try queue.close()
        }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let modified = try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date
        #expect {
            _ = try Store(path: path)
        } throws: { error in
            (error as? NewerStoreError)?.migration == "v99-from-the-future"
                && "\(error)".hasPrefix("this store was written by a newer knob (migration v99-from-the-future); upgrade knob")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "not a byte written")
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date == modified)
        let applied = try await DatabaseQueue(path: path).read { try String.fetchAll($0, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier") }
        #expect(applied == Migrations.migrator.migrations + ["v99-from-the-future"], "the recorded migrations are as they were: \(applied)")
    }

    @Test func theDatabaseAndItsCompanionsAreOwnerOnlyWhateverTheUmask() async throws {
        let path = tempDatabase()
        // Another store, made loose by hand before knob opens it again.
        let previous = umask(0o022)
        defer { umask(previous) }
        let store = try Store(path: path)
        try await store.createExperiment(experiment())
        for file in [path, path + "-wal", path + "-shm", path + ".open-lock"] {
            #expect(try mode(file) == 0o600, "\(file)")
        }
        try store.writer.close()
        chmod(path, 0o644)
        let reopened = try Store(path: path)
        #expect(try mode(path) == 0o600, "a loose database is tightened when opened")
        #expect(try await reopened.experiments().count == 1)
    }

    @Test func unfinishedStartsAreCountedUntilClearedOrTheExperimentEnds() async throws {
        let store = try Store()
        let id = try await store.createExperiment(experiment()).id!
        #expect(try await store.recordStartAttempt(id).unfinished == 0)
        let second = try await store.recordStartAttempt(id)
        #expect(second.unfinished == 1 && second.lastStartedAt != nil)
        #expect(try await store.recordStartAttempt(id).unfinished == 2)
        try await store.clearStartAttempts(id)
        #expect(try await store.recordStartAttempt(id).unfinished == 0, "a completed start resets the count")
        try await store.finishExperiment(id, status: .failed, reason: "DaemonCrashed", message: "m")
        #expect(try await store.recordStartAttempt(id).unfinished == 0, "an ended experiment forgets its unfinished starts")
        try await store.deleteExperiment(named: "exp")
        let left = try await store.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM startAttempt") }
        #expect(left == 0, "the count goes with its experiment")
    }

    @Test func fullAndFailingDisksAreToldApartFromOtherErrors() {
        #expect(StoreError.isUnavailable(DatabaseError(resultCode: .SQLITE_FULL)))
        #expect(StoreError.isUnavailable(DatabaseError(resultCode: ResultCode(rawValue: 10 | (4 << 8)))), "SQLITE_IOERR_WRITE")
        #expect(!StoreError.isUnavailable(DatabaseError(resultCode: .SQLITE_CONSTRAINT)))
        #expect(!StoreError.isUnavailable(StoreError.experimentNotFound("x")))
    }
}
