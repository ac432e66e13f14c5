import Foundation
import GRDB
import Synchronization
import Testing
@testable import Store

/// Writes that wait together share a transaction, and each still succeeds or fails on its own.
@Suite struct GroupCommitTests {
    /// Counts the commits of the connection it watches.
    final class Commits: TransactionObserver, @unchecked Sendable {
        let count = Mutex(0)
        func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { false }
        func databaseDidChange(with event: DatabaseEvent) {}
        func databaseDidCommit(_ db: Database) { count.withLock { $0 += 1 } }
        func databaseDidRollback(_ db: Database) {}
    }

    struct Refused: Error, Equatable { let number: Int }

    func pool() throws -> (DatabasePool, String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("knob-group-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let pool = try DatabasePool(path: "\(folder)/group.sqlite")
        try pool.write { try $0.execute(sql: "CREATE TABLE row (number INTEGER PRIMARY KEY, half INTEGER)") }
        return (pool, folder)
    }

    @Test func writesWaitingTogetherShareACommitAndEachFailsAlone() async throws {
        let (pool, folder) = try pool()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let commits = Commits()
        pool.add(transactionObserver: commits)
        let group = GroupCommit(pool, busyTimeout: 0)
        let writes = 200
        // Every seventh write inserts its rows and then throws: its rows must not stay.
        let outcomes = await withTaskGroup(of: (Int, Result<Int, Refused>).self) { tasks in
            for number in 0..<writes {
                tasks.addTask {
                    do {
                        let answer = try await group.write { db -> Int in
                            try db.execute(sql: "INSERT INTO row VALUES (?, ?)", arguments: [number, number / 2])
                            try db.execute(sql: "INSERT INTO row VALUES (?, ?)", arguments: [number + 10_000, number / 2])
                            if number % 7 == 3 { throw Refused(number: number) }
                            return try Int.fetchOne(db, sql: "SELECT half FROM row WHERE number = ?", arguments: [number])!
                        }
                        return (number, .success(answer))
                    } catch {
                        return (number, .failure(error as! Refused))
                    }
                }
            }
            return await tasks.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        #expect(outcomes.count == writes)
        for number in 0..<writes {
            if number % 7 == 3 {
                #expect(outcomes[number] == .failure(Refused(number: number)))
            } else {
                #expect(outcomes[number] == .success(number / 2))
            }
        }
        let stored = try await pool.read { try Int.fetchSet($0, sql: "SELECT number FROM row") }
        let kept = (0..<writes).filter { $0 % 7 != 3 }
        #expect(stored == Set(kept + kept.map { $0 + 10_000 }))
        // Each write committed alone would make 200 commits.
        let made = commits.count.withLock { $0 }
        #expect(made >= 1 && made < writes / 2, "\(made) commits for \(writes) writes")
    }

    @Test func aWriteWaitsForAnotherProcesssWriteAndThenCommits() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("knob-group-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var configuration = Configuration()
        configuration.busyMode = .timeout(20)
        let pool = try DatabasePool(path: "\(folder)/group.sqlite", configuration: configuration)
        try await pool.write { try $0.execute(sql: "CREATE TABLE row (number INTEGER PRIMARY KEY, half INTEGER)") }
        let group = GroupCommit(pool, busyTimeout: 20_000)
        // Another connection, as another process has, holds SQLite's write lock until told to commit.
        let other = try DatabaseQueue(path: "\(folder)/group.sqlite")
        let held = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            try? other.writeWithoutTransaction { db in
                try db.execute(sql: "BEGIN IMMEDIATE")
                held.signal()
                release.wait()
                try db.execute(sql: "INSERT INTO row VALUES (-1, 0)")
                try db.execute(sql: "COMMIT")
            }
        }
        held.wait()
        let started = ContinuousClock.now
        async let written: Int = group.write { db in
            try db.execute(sql: "INSERT INTO row VALUES (7, 3)")
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM row")!
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM row") } == 0, "nothing committed while the lock is held")
        release.signal()
        // It waited for the lock (no SQLITE_BUSY) and saw the other write.
        #expect(try await written == 2)
        #expect(ContinuousClock.now - started >= .milliseconds(300))
        #expect(try await pool.read { try Int.fetchAll($0, sql: "SELECT number FROM row ORDER BY number") } == [-1, 7])
        // With the lock free again, the next write commits as before.
        try await group.write { try $0.execute(sql: "INSERT INTO row VALUES (8, 4)") }
        #expect(try await pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM row") } == 3)
    }

    @Test func aLoneWriteThatThrowsRollsBackAndTheNextCommits() async throws {
        let (pool, folder) = try pool()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let group = GroupCommit(pool, busyTimeout: 0)
        await #expect(throws: Refused(number: 1)) {
            try await group.write { db in
                try db.execute(sql: "INSERT INTO row VALUES (1, 0)")
                throw Refused(number: 1)
            }
        }
        // A constraint SQLite refuses fails that write, with SQLite's error.
        try await group.write { try $0.execute(sql: "INSERT INTO row VALUES (2, 0)") }
        await #expect(throws: DatabaseError.self) {
            try await group.write { try $0.execute(sql: "INSERT INTO row VALUES (2, 0)") }
        }
        try await group.write { try $0.execute(sql: "INSERT INTO row VALUES (3, 0)") }
        #expect(try await pool.read { try Int.fetchAll($0, sql: "SELECT number FROM row ORDER BY number") } == [2, 3])
    }
}
