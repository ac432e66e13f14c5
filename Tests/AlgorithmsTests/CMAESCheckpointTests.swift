import Foundation
import Synchronization
import Testing
@testable import KnobAlgorithms

/// A state store in memory.
final class MemoryStateStore: SuggesterStateStore {
    private let files = Mutex<[String: [UInt8]]>([:])

    func read(_ name: String) -> [UInt8]? { files.withLock { $0[name] } }
    func write(_ name: String, _ bytes: [UInt8]) { files.withLock { $0[name] = bytes } }
    func replace(_ name: String, with bytes: [UInt8]?) { files.withLock { $0[name] = bytes } }
}

/// Replay checkpoints kept in a `SuggesterStateStore`: the first suggestion of a new process
/// resumes from one, and gets exactly what replaying the whole history gives; one that does not
/// fit the history, or is damaged, is ignored.
///
/// Seeds here are their own (90_000 and up), so that no other suite's in-memory checkpoint has
/// their key. Clearing the in-memory checkpoints plays a restart.
@Suite struct CMAESCheckpointTests {
    static let intSpace = SearchSpace([
        Parameter(name: "x", kind: .double(min: -5, max: 10, step: nil, scale: .linear)),
        Parameter(name: "n", kind: .int(min: 0, max: 12, step: 1, scale: .linear)),
        Parameter(name: "y", kind: .double(min: 0, max: 15, step: nil, scale: .linear)),
    ])

    static func intValue(_ a: Assignment) -> Double {
        let x = a["x"]!.numericValue!, n = a["n"]!.numericValue!, y = a["y"]!.numericValue!
        return (x - 1) * (x - 1) + abs(n - 7) + 0.1 * (y - 3) * (y - 3)
    }

    /// Spaces and settings that exercise each kind of state: plain CMA-ES, margin on integers,
    /// CatCMA, IPOP and BIPOP restarts.
    static let configurations: [(space: SearchSpace, settings: [String: String], f: @Sendable (Assignment) -> Double)] = [
        (CMAESSuggesterTests.branin, [:], CMAESSuggesterTests.braninValue),
        (CMAESSuggesterTests.branin, ["restart_strategy": "bipop", "popsize": "4"], { a in (CMAESSuggesterTests.braninValue(a) / 10).rounded() }),
        (intSpace, ["restart_strategy": "none"], intValue),
        (CatCMATests.mixed, [:], CatCMATests.value),
    ]

    /// `trials` trials driven with a store, then `pending` more handed out and left running.
    static func search(_ configuration: Int, seed: UInt64, store: MemoryStateStore, trials: Int = 90, pending: Int = 2) throws -> (SuggesterContext, History) {
        let (space, settings, f) = configurations[configuration]
        let context = SuggesterContext(space: space, settings: settings, seed: seed, stateStore: store)
        let suggester = try CMAESSuggester(context: context)
        var history = try CMAESSuggesterTests.drive(suggester, trials: trials, parallel: 3, fail: { $0 % 13 == 6 }, f)
        history.trials += try suggester.suggest(count: pending, history: history)
            .map { .init(assignment: $0.assignment, outcome: .pending, metadata: $0.metadata) }
        return (context, history)
    }

    /// The replay and next suggestions of a new process.
    static func restart(_ context: SuggesterContext, _ history: History) throws -> (CMAESSuggester.Replay, [Suggestion]) {
        CMAESSuggester.clearReplayCheckpoints()
        let suggester = try CMAESSuggester(context: context)
        let replay = suggester.replay(history)
        CMAESSuggester.clearReplayCheckpoints()
        return (replay, try suggester.suggest(count: 4, history: history))
    }

    /// What a new process with nothing kept suggests: the whole history replayed.
    static func fullReplay(_ context: SuggesterContext, _ history: History) throws -> (CMAESSuggester.Replay, [Suggestion]) {
        var bare = context
        bare.stateStore = nil
        let (replay, suggestions) = try restart(bare, history)
        #expect(replay.resumed == 0)
        return (replay, suggestions)
    }

    static func expectSameState(_ a: CMAESSuggester.Replay, _ b: CMAESSuggester.Replay) {
        #expect(a.generation == b.generation && a.completedGenerations == b.completedGenerations)
        #expect(a.run.number == b.run.number && a.run.isLarge == b.run.isLarge && a.run.state.p.lambda == b.run.state.p.lambda)
        #expect(a.run.state.mean == b.run.state.mean && a.run.state.sigma == b.run.state.sigma)
        #expect(a.run.state.stopReason == b.run.state.stopReason)
    }

    /// With `bytes` in the store, a new process ignores them and suggests what the whole replay does.
    static func expectIgnored(_ bytes: [UInt8], _ name: String, store: MemoryStateStore, context: SuggesterContext, history: History) throws {
        store.replace(CMAESSuggester.checkpointName, with: bytes)
        let (replay, suggestions) = try restart(context, history)
        let (full, expected) = try fullReplay(context, history)
        #expect(replay.resumed == 0, "\(name)")
        expectSameState(replay, full)
        #expect(suggestions == expected, "\(name)")
    }

    @Test(arguments: configurations.indices)
    func aKeptCheckpointGivesWhatTheWholeReplayGives(configuration: Int) throws {
        let store = MemoryStateStore()
        let (context, running) = try Self.search(configuration, seed: 90_000 + UInt64(configuration), store: store)
        // With members of the open generation running, and with only ended trials (then there is
        // always something to suggest).
        let ended = History(running.trials.filter { $0.outcome != .pending })
        for (name, history) in [("running", running), ("ended", ended)] {
            let (resumed, suggestions) = try Self.restart(context, history)
            let (full, expected) = try Self.fullReplay(context, history)
            #expect(resumed.resumed > 0 && resumed.resumed <= resumed.completedGenerations,
                    "\(name): resumed \(resumed.resumed) of \(resumed.completedGenerations)")
            Self.expectSameState(resumed, full)
            #expect(suggestions == expected, "\(name)")
            #expect(name == "running" || !expected.isEmpty)
            if configuration == 1 { #expect(full.run.number > 1, "the BIPOP search restarted") }
        }
    }

    @Test func theWarmCallsKeepTheStoreUpToDate() throws {
        let store = MemoryStateStore()
        let (context, history) = try Self.search(0, seed: 90_010, store: store, trials: 60, pending: 0)
        // The call that hands out the next generation wrote the checkpoint of all before it.
        var running = history
        running.trials += try CMAESSuggester(context: context).suggest(count: 1, history: history)
            .map { .init(assignment: $0.assignment, outcome: .pending, metadata: $0.metadata) }
        let kept = try #require(store.read(CMAESSuggester.checkpointName))
        let checkpoint = try #require(try CMAESSuggester(context: context).decodeCheckpoint(kept))
        let (full, _) = try Self.fullReplay(context, running)
        #expect(checkpoint.generation == full.completedGenerations)
        #expect(try Self.restart(context, running).0.resumed == full.completedGenerations)
    }

    @Test func aCheckpointThatDoesNotFitTheHistoryIsIgnored() throws {
        let store = MemoryStateStore()
        let (context, history) = try Self.search(0, seed: 90_020, store: store, trials: 80)
        let kept = try #require(store.read(CMAESSuggester.checkpointName))
        var variants: [(String, History)] = []
        var deleted = history
        deleted.trials.remove(at: 4)
        variants.append(("a trial deleted", deleted))
        var changed = history
        changed.trials[7].outcome = .failed
        variants.append(("a value changed", changed))
        var rewritten = history
        rewritten.trials[9].metadata[CMAESSuggester.sampleKey]! += "0"
        variants.append(("a sample rewritten (same numbers, other text)", rewritten))
        variants.append(("the last generations gone", History(Array(history.trials.prefix(50)))))
        variants.append(("another search", try Self.search(0, seed: 90_021, store: MemoryStateStore(), trials: 80).1))
        for (name, variant) in variants {
            try Self.expectIgnored(kept, name, store: store, context: context, history: variant)
        }
    }

    @Test func anOlderCheckpointResumesAndTellsTheRest() throws {
        let store = MemoryStateStore()
        let (context, early) = try Self.search(3, seed: 90_030, store: store, trials: 40, pending: 0)
        let old = try #require(store.read(CMAESSuggester.checkpointName))
        let history = try CMAESSuggesterTests.drive(try CMAESSuggester(context: context), trials: 90, parallel: 3, fail: { $0 % 13 == 6 },
                                                    CatCMATests.value)
        #expect(Array(history.trials.prefix(early.trials.count)) == early.trials, "the same search, further on")
        store.replace(CMAESSuggester.checkpointName, with: old)
        let (replay, suggestions) = try Self.restart(context, history)
        let (full, expected) = try Self.fullReplay(context, history)
        #expect(replay.resumed > 0 && replay.resumed < full.completedGenerations)
        Self.expectSameState(replay, full)
        #expect(suggestions == expected)
    }

    @Test func damagedOrForeignBytesAreIgnored() throws {
        let store = MemoryStateStore()
        let (context, history) = try Self.search(2, seed: 90_040, store: store, trials: 60)
        let kept = try #require(store.read(CMAESSuggester.checkpointName))
        var variants: [(String, [UInt8])] = [("empty", [])]
        for length in Array(0..<40) + Array(stride(from: 40, to: kept.count, by: 97)) {
            variants.append(("cut at \(length) of \(kept.count)", Array(kept.prefix(length))))
        }
        for position in stride(from: 0, to: kept.count, by: 61) {
            var flipped = kept
            flipped[position] ^= 0x10
            variants.append(("bit flipped at \(position)", flipped))
        }
        var generator = SeededGenerator(seed: 11, stream: 0)
        for size in [1, 16, 17, 200, kept.count] {
            variants.append(("\(size) random bytes", (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }))
        }
        var tagged = Array(kept.prefix(16))
        tagged += (16..<kept.count).map { _ in UInt8.random(in: 0...255, using: &generator) }
        variants.append(("the tag and checksum field of a checkpoint, random after", tagged))
        for (name, seed, sigma) in [("another seed", 90_041, nil), ("another sigma", 90_040, "0.2")] {
            var other = context
            other.seed = UInt64(seed)
            other.settings["sigma"] = sigma
            let otherStore = MemoryStateStore()
            other.stateStore = otherStore
            _ = try CMAESSuggesterTests.drive(try CMAESSuggester(context: other), trials: 60, parallel: 3, Self.intValue)
            let foreign = try #require(otherStore.read(CMAESSuggester.checkpointName))
            #expect(try CMAESSuggester(context: context).decodeCheckpoint(foreign) == nil, "written for \(name)")
            variants.append(("the checkpoint of \(name)", foreign))
        }
        // Written for the same space and seed with IPOP (this search has no restarts): its states
        // are the same until a restart, but a checkpoint serves only the settings it was written for.
        var ipop = context
        ipop.settings["restart_strategy"] = "ipop"
        let ipopStore = MemoryStateStore()
        ipop.stateStore = ipopStore
        _ = try CMAESSuggesterTests.drive(try CMAESSuggester(context: ipop), trials: 60, parallel: 3, fail: { $0 % 13 == 6 }, Self.intValue)
        let otherSettings = try #require(ipopStore.read(CMAESSuggester.checkpointName))
        #expect(try CMAESSuggester(context: context).decodeCheckpoint(otherSettings) == nil)
        #expect(try CMAESSuggester(context: ipop).decodeCheckpoint(otherSettings) != nil)
        for (name, bytes) in variants {
            try Self.expectIgnored(bytes, name, store: store, context: context, history: history)
        }
    }

    /// Bytes that pass the checksum (as a forger's would) but end early or go on too long are
    /// read without crashing and refused.
    @Test func everyCutOfAResealedCheckpointIsRefused() throws {
        let store = MemoryStateStore()
        for configuration in [0, 3] {
            let (context, _) = try Self.search(configuration, seed: 90_050, store: store, trials: 30)
            let suggester = try CMAESSuggester(context: context)
            let kept = try #require(store.read(CMAESSuggester.checkpointName))
            #expect(suggester.decodeCheckpoint(kept) != nil)
            for length in 16..<kept.count {
                var cut = Array(kept.prefix(length))
                StateBytes.seal(&cut)
                #expect(suggester.decodeCheckpoint(cut) == nil, "cut at \(length) of \(kept.count)")
            }
            var longer = kept + [0, 0, 0, 0, 0, 0, 0, 0]
            StateBytes.seal(&longer)
            #expect(suggester.decodeCheckpoint(longer) == nil)
        }
    }

    @Test func stateReaderChecksEveryLength() throws {
        var writer = StateWriter(tag: Array("testtag!".utf8))
        writer.doubles([1.5, -0.0, .infinity])
        writer.int(-3)
        writer.string("é,1")
        writer.bool(true)
        let bytes = writer.sealed()
        var reader = try #require(StateReader(bytes, tag: Array("testtag!".utf8)))
        #expect(try reader.doubles(count: 3).map(\.bitPattern) == [1.5, -0.0, .infinity].map(\.bitPattern))
        #expect(try reader.int() == -3)
        #expect(try reader.string() == "é,1")
        #expect(try reader.bool())
        #expect(reader.isAtEnd)
        #expect(StateReader(bytes, tag: Array("othertag".utf8)) == nil)
        // A count larger than what is left throws instead of reading on.
        var huge = StateWriter(tag: Array("testtag!".utf8))
        huge.int(Int.max)
        huge.double(1)
        var hugeReader = try #require(StateReader(huge.sealed(), tag: Array("testtag!".utf8)))
        #expect(throws: StateReader.Malformed.self) { try hugeReader.doubles() }
        var shortReader = try #require(StateReader(huge.sealed(), tag: Array("testtag!".utf8)))
        #expect(throws: StateReader.Malformed.self) { try shortReader.data() }
    }
}
