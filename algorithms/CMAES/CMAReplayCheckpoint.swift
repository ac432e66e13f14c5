import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// A replay checkpoint is what `CMAESSuggester.replay` reaches after some complete generations,
// with what each member of those generations was (its raw sample as written and its value), so
// that it serves a later history only when that history starts with the same generations. It
// is kept in memory (`CMAReplayCache`) and, when the suggester has a `SuggesterStateStore`, in
// the store, where the first suggestion of a new process finds it.

extension CMAESSuggester {
    /// Where a replay can resume: the state after `generation` complete generations, and their
    /// members.
    struct Checkpoint {
        var run: Run
        var generation: Int
        var budget: (large: Int, small: Int)
        var largeRestarts: Int
        var members = MemberLog()
    }

    /// The members of the generations a checkpoint covers, in order: each one's sample text (as
    /// its trial's metadata holds it) and its value.
    struct MemberLog {
        /// The sample texts, one after the other (UTF-8).
        private(set) var text: [UInt8] = []
        /// Where each member's text ends in `text`.
        private(set) var textEnds: [Int] = []
        private(set) var values: [Double] = []
        /// How many members there are once each generation is complete.
        private(set) var generationEnds: [Int] = []

        var generations: Int { generationEnds.count }

        mutating func append(generation members: [(text: String, value: Double)]) {
            for member in members {
                text.append(contentsOf: member.text.utf8)
                textEnds.append(text.count)
                values.append(member.value)
            }
            generationEnds.append(values.count)
        }

        /// The members of generation `g`.
        func range(of g: Int) -> Range<Int> { (g == 0 ? 0 : generationEnds[g - 1])..<generationEnds[g] }

        /// Whether member `k`'s text is `other`.
        func text(_ k: Int, equals other: String) -> Bool {
            let start = k == 0 ? 0 : textEnds[k - 1], end = textEnds[k]
            let same = other.utf8.withContiguousStorageIfAvailable { other in
                other.count == end - start && text.withUnsafeBufferPointer { text in
                    other.isEmpty || memcmp(other.baseAddress!, text.baseAddress! + start, other.count) == 0
                }
            }
            return same ?? other.utf8.elementsEqual(text[start..<end])
        }

        func encode(into writer: inout StateWriter) {
            writer.ints(generationEnds)
            writer.doubles(values)
            writer.ints(textEnds)
            writer.data(text)
        }

        /// The log `encode(into:)` wrote; throws unless its counts and offsets fit together.
        init(from reader: inout StateReader) throws(StateReader.Malformed) {
            generationEnds = try reader.ints()
            values = try reader.doubles()
            textEnds = try reader.ints()
            text = try reader.data()
            guard textEnds.count == values.count, Self.ascending(generationEnds, from: 1, to: values.count), Self.ascending(textEnds, from: 0, to: text.count),
                  !values.contains(where: \.isNaN) else { throw StateReader.Malformed() }
        }

        init() {}

        /// Whether `offsets` rise by at least `step` at each entry from 0 and end at `end`.
        private static func ascending(_ offsets: [Int], from step: Int, to end: Int) -> Bool {
            var previous = 0
            for offset in offsets {
                guard offset >= previous + step else { return false }
                previous = offset
            }
            return previous == end
        }
    }

    /// The trials of the history by generation, from their metadata: per generation, each
    /// member's index, position in the history, sample text and value, in the history's order.
    struct GenerationIndex {
        struct Member {
            var index: Int
            var position: Int
            var sample: String?
            /// What replay tells for it (`nil` while it runs).
            var value: Double?
        }

        private var entries: [[Member]] = []

        init(_ history: History) {
            let trials = history.trials
            for position in trials.indices {
                let (generation, index, sample) = Self.tags(trials[position].metadata)
                // No replay gets past a generation beyond the number of trials (each has λ ≥ 2 members).
                guard let g = generation.flatMap(Int.init), g >= 0, g < trials.count,
                      let i = index.flatMap(Int.init), i >= 0 else { continue }
                if g >= entries.count { entries += Array(repeating: [], count: g + 1 - entries.count) }
                entries[g].append(Member(index: i, position: position, sample: sample, value: CMAESSuggester.toldValue(trials[position].outcome)))
            }
        }

        /// The generation, index and sample of a trial's metadata. A suggestion's metadata has a
        /// handful of entries: comparing their keys costs less than hashing three.
        private static func tags(_ metadata: [String: String]) -> (generation: String?, index: String?, sample: String?) {
            guard metadata.count <= 8 else {
                return (metadata[CMAESSuggester.generationKey], metadata[CMAESSuggester.indexKey], metadata[CMAESSuggester.sampleKey])
            }
            var tags: (generation: String?, index: String?, sample: String?) = (nil, nil, nil)
            for (key, value) in metadata {
                switch key {
                case CMAESSuggester.generationKey: tags.generation = value
                case CMAESSuggester.indexKey: tags.index = value
                case CMAESSuggester.sampleKey: tags.sample = value
                default: break
                }
            }
            return tags
        }

        /// The member of each index below `lambda` in generation `g` (the last one when several
        /// claim an index).
        func members(of g: Int, lambda: Int) -> [Member?] {
            var members = [Member?](repeating: nil, count: lambda)
            if g < entries.count {
                for entry in entries[g] where entry.index < lambda { members[entry.index] = entry }
            }
            return members
        }

        /// Generation `g`'s trials by index (the last one when several claim an index).
        func trials(of g: Int, in history: History) -> [Int: History.Trial] {
            guard g < entries.count else { return [:] }
            var trials: [Int: History.Trial] = [:]
            for entry in entries[g] { trials[entry.index] = history.trials[entry.position] }
            return trials
        }
    }

    /// A trial's value as replay tells it (failed and NaN count as worse than all), or `nil`
    /// while it runs.
    static func toldValue(_ outcome: History.Trial.Outcome) -> Double? {
        switch outcome {
        case .pending: nil
        case .completed(let value): value.isNaN ? .infinity : value
        case .failed: .infinity
        }
    }

    /// Whether the history's first generations are exactly those the checkpoint was built from:
    /// the same members with the same sample texts and values.
    func history(_ index: GenerationIndex, startsWith checkpoint: Checkpoint) -> Bool {
        let log = checkpoint.members
        guard log.generations == checkpoint.generation else { return false }
        for g in 0..<log.generations {
            let range = log.range(of: g)
            for (k, member) in zip(range, index.members(of: g, lambda: range.count)) {
                guard let member, let text = member.sample, log.text(k, equals: text),
                      member.value?.bitPattern == log.values[k].bitPattern else { return false }
            }
        }
        return true
    }

    // MARK: In the state store

    static let checkpointName = "cmaes.checkpoint"
    /// The format of a stored checkpoint. Change it with the format, and with anything that
    /// changes what a replay computes (the update, the restarts, the sampling): a checkpoint
    /// written before must not be taken for one of the new replay.
    static let checkpointTag = Array("knobCMA\u{1}".utf8)

    /// What a stored checkpoint must have been written for: a replay depends on the space, the
    /// seed and the settings.
    static func checkpointIdentity(space: SearchSpace, seed: UInt64, sigma0: Double, lambda0: Int, restart: RestartStrategy) -> String {
        "\(String(reflecting: space)) seed=\(seed) sigma=\(sigma0.bitPattern) popsize=\(lambda0) restart=\(restart.rawValue)"
    }

    func encode(_ checkpoint: Checkpoint) -> [UInt8] {
        var writer = StateWriter(tag: Self.checkpointTag, reservingCapacity: checkpoint.members.text.count + 32 * checkpoint.members.values.count)
        writer.string(checkpointIdentity ?? "")
        for value in [checkpoint.generation, checkpoint.budget.large, checkpoint.budget.small, checkpoint.largeRestarts, checkpoint.run.number] {
            writer.int(value)
        }
        writer.bool(checkpoint.run.isLarge)
        writer.int(checkpoint.run.state.p.lambda)
        writer.double(checkpoint.run.state.sigma0)
        checkpoint.run.state.encode(into: &writer)
        checkpoint.members.encode(into: &writer)
        return writer.sealed()
    }

    /// The checkpoint in `bytes`, or `nil` when they are not one of this suggester's, whole.
    func decodeCheckpoint(_ bytes: [UInt8]) -> Checkpoint? {
        guard let identity = checkpointIdentity, var reader = StateReader(bytes, tag: Self.checkpointTag) else { return nil }
        do throws(StateReader.Malformed) {
            guard try reader.string() == identity else { return nil }
            let generation = try reader.int(in: 0...Int.max)
            let budget = (large: try reader.int(in: 0...Int.max), small: try reader.int(in: 0...Int.max))
            let largeRestarts = try reader.int(in: 0...Int.max)
            let number = try reader.int(in: 0...Int.max)
            let isLarge = try reader.bool()
            // λ of any run: λ0 doubled at most 10 times (BIPOP's small runs have less).
            let lambda = try reader.int(in: 2...(lambda0 << 10))
            let sigma = try reader.double()
            guard sigma > 0, sigma <= 1 else { return nil }
            var state = initialState(at: Array(repeating: 0.5, count: space.dimension), sigma: sigma, lambda: lambda)
            try state.restore(from: &reader)
            let members = try MemberLog(from: &reader)
            guard reader.isAtEnd, members.generations == generation else { return nil }
            return Checkpoint(run: Run(state: state, number: number, isLarge: isLarge), generation: generation,
                              budget: budget, largeRestarts: largeRestarts, members: members)
        } catch {
            return nil
        }
    }
}

/// Replay checkpoints of recent CMA-ES searches in this process, one per configuration, so that a
/// suggestion costs the generations completed since the last one rather than the whole history.
final class CMAReplayCache: Sendable {
    struct Key: Hashable, Sendable {
        var space: SearchSpace
        var seed: UInt64
        var sigma0: Double
        var lambda0: Int
        var restart: String
    }

    private struct Entries: ~Copyable {
        var checkpoints: [Key: CMAESSuggester.Checkpoint] = [:]
        var order: [Key] = []
    }

    static let shared = CMAReplayCache()
    private let entries = Mutex(Entries())
    private let capacity = 32

    func checkpoint(for key: Key) -> CMAESSuggester.Checkpoint? {
        entries.withLock { $0.checkpoints[key] }
    }

    func store(_ checkpoint: CMAESSuggester.Checkpoint, for key: Key) {
        entries.withLock { entries in
            if entries.checkpoints[key] == nil {
                entries.order.append(key)
                if entries.order.count > capacity { entries.checkpoints[entries.order.removeFirst()] = nil }
            }
            entries.checkpoints[key] = checkpoint
        }
    }

    func removeAll() {
        entries.withLock { $0 = Entries() }
    }
}
