import GRDB
import GRDBSQLite
import Synchronization

/// Commits the writes asked for while another is being committed together, in one transaction.
///
/// Each write still sees its own changes applied atomically: in a shared transaction it runs inside
/// a savepoint, and a write that throws rolls back only its savepoint and fails alone. Nobody is told
/// a write succeeded before the transaction holding it has committed; a failed commit fails every
/// write it held. A write asked for while none is in progress starts a transaction of its own at once.
///
/// Many trials starting and ending together (a wide `parallelTrialCount`) each wrote a short
/// transaction of their own; with SQLite's work per commit (the WAL frames, the shared-memory index,
/// the locks) paid once per group, the store keeps up with them at a fraction of the cost.
///
/// A group is committed on the thread of the task that commits, when SQLite's write lock can be had at
/// once, which spares the hand-offs to GRDB's writer queue and back; when another process holds the
/// lock, the group waits for it on GRDB's queue instead, so that no thread of the cooperative pool
/// waits on another process.
final class GroupCommit: Sendable {
    private let writer: any DatabaseWriter
    /// The connection's busy timeout, in milliseconds, put back after the attempt that waits for nothing.
    private let busyTimeout: Int32
    private let state = Mutex(State())

    private struct State {
        var waiting: [Write] = []
        var committing = false
    }

    /// A write waiting for its transaction: the work, then how it went.
    private final class Write: @unchecked Sendable {
        let run: (Database) throws -> Void
        private(set) var failure: (any Error)?
        let finish: @Sendable ((any Error)?) -> Void

        init(run: @escaping (Database) throws -> Void, finish: @escaping @Sendable ((any Error)?) -> Void) {
            self.run = run
            self.finish = finish
        }

        /// Runs the write alone, or in a savepoint of a transaction it shares. The savepoint's statements are
        /// those GRDB's `inSavepoint` runs inside a transaction, kept prepared by the connection.
        func apply(_ db: Database, shared: Bool) {
            do {
                guard shared else { return try run(db) }
                try db.cachedStatement(sql: "SAVEPOINT groupWrite").execute()
                do {
                    try run(db)
                } catch {
                    // As inSavepoint does: the write's own error is the one told. A failure that ended the whole
                    // transaction left no savepoint to roll back to, and `GroupCommit.apply` ends the group.
                    try? db.cachedStatement(sql: "ROLLBACK TRANSACTION TO SAVEPOINT groupWrite").execute()
                    try? db.cachedStatement(sql: "RELEASE SAVEPOINT groupWrite").execute()
                    throw error
                }
                try db.cachedStatement(sql: "RELEASE SAVEPOINT groupWrite").execute()
            } catch {
                failure = error
            }
        }
    }

    init(_ writer: any DatabaseWriter, busyTimeout: Int32) {
        self.writer = writer
        self.busyTimeout = busyTimeout
    }

    /// Runs `updates` in a write transaction, alone or with the writes waiting beside it, and returns
    /// once that transaction has committed.
    func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let result = Mutex<T?>(nil)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let write = Write(run: { db in
                let value = try updates(db)
                result.withLock { $0 = value }
            }, finish: { error in
                if let error { continuation.resume(throwing: error) } else { continuation.resume() }
            })
            let first = state.withLock { state in
                state.waiting.append(write)
                defer { state.committing = true }
                return !state.committing
            }
            if first { Task { await self.commitWaiting() } }
        }
        return result.withLock { $0! }
    }

    /// The writes waiting now, taken to be committed; none when nothing waits, and then nothing is being committed.
    private func take() -> [Write] {
        state.withLock { state in
            defer { state.waiting = [] }
            if state.waiting.isEmpty { state.committing = false }
            return state.waiting
        }
    }

    /// Commits what waits, in groups, until nothing does.
    private func commitWaiting() async {
        while true {
            let group = take()
            if group.isEmpty { return }
            if !commitHere(group) { await commitThroughQueue(group) }
        }
    }

    /// Commits `group` on this thread if SQLite's write lock is free now; false, with nothing done, when another
    /// connection holds it.
    private func commitHere(_ group: [Write]) -> Bool {
        do {
            let committed = try writer.writeWithoutTransaction { db -> Bool in
                sqlite3_busy_timeout(db.sqliteConnection, 0)
                // BEGIN and COMMIT as statements the connection keeps, as GRDB's beginTransaction and commit run them.
                let began = Result { try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute() }
                sqlite3_busy_timeout(db.sqliteConnection, busyTimeout)
                if case .failure(let error as DatabaseError) = began, error.resultCode.primaryResultCode == .SQLITE_BUSY { return false }
                try began.get()
                do {
                    try Self.apply(group, db)
                    try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
                } catch {
                    if db.isInsideTransaction { try? db.rollback() }
                    throw error
                }
                return true
            }
            guard committed else { return false }
            Self.finish(group, nil)
        } catch {
            Self.finish(group, error)
        }
        return true
    }

    /// Commits `group` in a transaction on GRDB's writer queue, waiting there for the lock as long as the
    /// connection's busy timeout allows.
    private func commitThroughQueue(_ group: [Write]) async {
        do {
            try await writer.write { db in try Self.apply(group, db) }
            Self.finish(group, nil)
        } catch {
            Self.finish(group, error)
        }
    }

    /// Tells each write of a group how it went: its own failure, else the transaction's (nil once committed).
    private static func finish(_ group: [Write], _ transactionFailure: (any Error)?) {
        for write in group { write.finish(write.failure ?? transactionFailure) }
    }

    /// Runs the group's writes in the open transaction; throws when the transaction must be rolled back.
    private static func apply(_ group: [Write], _ db: Database) throws {
        let shared = group.count > 1
        for write in group {
            write.apply(db, shared: shared)
            guard let failure = write.failure else { continue }
            // A lone write that failed rolls its transaction back, as it did alone. A failure that ended the
            // whole transaction (SQLite rolls back on some, such as a full disk) took the writes before it
            // along, and leaves the rest none to join: they all fail with it.
            if !shared || !db.isInsideTransaction { throw failure }
        }
    }
}
