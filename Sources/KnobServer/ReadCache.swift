import NIOCore
import Store
import Synchronization

/// The encoded answers of the read routes (`/optimal`, `/trials`, the experiments list), kept while
/// the store stays as it was when they were read.
///
/// Whether it stayed so is SQLite's `data_version`, read on a connection of the cache's own before
/// every lookup: it changes with every commit, by this process or any other (`knob run` on the same
/// store), so an answer is never older than the last commit before its request. An answer is kept
/// under the version read *before* the reads that made it: a commit in between makes it look older
/// than it is, never newer. An in-memory store (no file another connection could watch) keeps nothing.
final class ReadCache: Sendable {
    /// Answers larger than this are made afresh each time rather than kept.
    static let maxAnswerBytes = 256 << 10
    /// Above this, the answers kept are dropped before another is added.
    static let maxKeptBytes = 4 << 20

    private let probe: StoreChangeProbe?
    private let state = Mutex(Kept())

    private struct Kept {
        /// The newest version an answer was kept under; older answers are gone.
        var version = Int.min
        var answers: [String: Answer] = [:]
        var bytes = 0
    }

    struct Answer: Sendable {
        var version: Int
        var value: Value
    }

    /// What is kept of an answer: the body, and the header that continues a page (if any); or,
    /// for a list of experiments, each one's view as it reads with and without a controller (whether
    /// one drives it is a lock, not the store: it is looked at for each answer).
    struct Value: Sendable {
        var body = ByteBuffer()
        var continueToken: String?
        var experiments: [Listed] = []

        var size: Int { body.readableBytes + experiments.reduce(0) { $0 + $1.size } }
    }

    /// An experiment of a list, encoded.
    struct Listed: Sendable {
        var name: String
        var driven: ByteBuffer
        var notDriven: ByteBuffer

        var size: Int { name.utf8.count + driven.readableBytes + notDriven.readableBytes }
    }

    /// A cache over `store`'s file; one that keeps nothing for an in-memory store.
    init(_ store: Store) {
        probe = store.path == nil ? nil : try? StoreChangeProbe(store)
    }

    /// The store's version now, for `lookup` and `keep`; nil when nothing can be kept.
    func version() throws -> Int? {
        try probe?.versionNow()
    }

    /// The answer kept under `key` if it was read at `version`.
    func lookup(_ key: String, at version: Int?) -> Value? {
        guard let version else { return nil }
        return state.withLock { kept in
            guard let answer = kept.answers[key], answer.version == version else { return nil }
            return answer.value
        }
    }

    /// Keeps `value` under `key`, read after the store was at `version`.
    func keep(_ value: Value, _ key: String, at version: Int?) {
        guard let version, value.size <= Self.maxAnswerBytes else { return }
        state.withLock { kept in
            // data_version only grows: an answer read at an older version than one already kept
            // is of a store that is gone.
            if version < kept.version { return }
            if version > kept.version || kept.bytes + value.size > Self.maxKeptBytes {
                kept.answers = [:]
                kept.bytes = 0
                kept.version = version
            }
            kept.bytes += value.size - (kept.answers[key]?.value.size ?? 0)
            kept.answers[key] = Answer(version: version, value: value)
        }
    }

    /// The answer under `key`: kept, or made by `make` (and kept).
    func answer(_ key: String, make: () async throws -> Value) async throws -> Value {
        let version = try version()
        if let kept = lookup(key, at: version) { return kept }
        let value = try await make()
        keep(value, key, at: version)
        return value
    }

    /// How many answers are kept now (for tests).
    var count: Int { state.withLock { $0.answers.count } }
}
