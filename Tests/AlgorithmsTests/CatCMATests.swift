import Foundation
import Testing
@testable import KnobAlgorithms

@Suite struct CatCMATests {
    static let mixed = SearchSpace([
        Parameter(name: "lr", kind: .double(min: 1e-4, max: 1, step: nil, scale: .log)),
        Parameter(name: "units", kind: .int(min: 1, max: 8, step: 1, scale: .linear)),
        Parameter(name: "opt", kind: .categorical(["sgd", "adam", "rmsprop", "adagrad", "lamb"])),
        Parameter(name: "m", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
    ])

    /// Best at opt = rmsprop (the middle of the list, its neighbours the worst choices, so that an
    /// order on the choices misleads), lr = 10⁻², units = 6, m = 0.3.
    static func value(_ a: Assignment) -> Double {
        let offsets = ["sgd": 0.5, "adam": 1.0, "rmsprop": 0, "adagrad": 1.0, "lamb": 0.4]
        guard case .string(let opt)? = a["opt"] else { return .infinity }
        let t = log10(a["lr"]!.numericValue!) + 2, u = (a["units"]!.numericValue! - 6) / 4, m = a["m"]!.numericValue! - 0.3
        return offsets[opt]! + t * t / 4 + u * u + m * m
    }

    @Test func aSpaceWithCategoricalsRunsCatCMAAndOneWithoutKeepsCMAES() throws {
        let catcma = try CMAESSuggester(context: SuggesterContext(space: Self.mixed, seed: 1))
        #expect(catcma.replay(History()).run.state is CatCMAState)
        let plain = try CMAESSuggester(context: SuggesterContext(space: CMAESSuggesterTests.branin, seed: 1))
        #expect(plain.replay(History()).run.state is CMAState)
        // A one-choice categorical is no choice: still plain CMA-ES.
        let single = SearchSpace(CMAESSuggesterTests.branin.parameters + [Parameter(name: "c", kind: .categorical(["only"]))])
        #expect(try CMAESSuggester(context: SuggesterContext(space: single, seed: 1)).replay(History()).run.state is CMAState)
    }

    @Test func learnsTheBestChoiceWithoutRelyingOnTheirOrder() throws {
        let suggester = try CMAESSuggester(context: SuggesterContext(space: Self.mixed, settings: ["restart_strategy": "none"], seed: 3))
        let history = try CMAESSuggesterTests.drive(suggester, trials: 300, parallel: 2, fail: { $0 % 13 == 7 }, Self.value)
        let state = try #require(suggester.replay(history).run.state as? CatCMAState)
        let q = state.q[0]
        #expect(q.firstIndex(of: q.max()!) == 2, "q = \(q)")
        #expect(q[2] > 0.8, "q = \(q)")
        // The margin keeps every other choice possible.
        #expect(q.allSatisfy { $0 >= state.qMin[0] * (1 - 1e-9) }, "q = \(q), minimum \(state.qMin[0])")
        let best = try #require(history.completed.min { $0.value < $1.value })
        #expect(best.value < 0.02, "best \(best.value) at \(best.assignment)")
    }

    @Test func aRestartedProcessRebuildsTheCategoricalDistributions() throws {
        let context = SuggesterContext(space: Self.mixed, settings: ["popsize": "6"], seed: 5)
        let history = try CMAESSuggesterTests.drive(try CMAESSuggester(context: context), trials: 45, parallel: 2, Self.value)
        var midGeneration = history
        midGeneration.trials += try CMAESSuggester(context: context).suggest(count: 2, history: history)
            .map { .init(assignment: $0.assignment, outcome: .pending, metadata: $0.metadata) }
        // Through text, as the store keeps a history, and with no replay checkpoint in memory.
        let reloaded = History(midGeneration.trials.map { trial in
            .init(assignment: Self.mixed.decode(Self.mixed.encode(trial.assignment)), outcome: trial.outcome,
                  metadata: trial.metadata.mapValues { String($0) })
        })
        let a = try CMAESSuggester(context: context).suggest(count: 3, history: midGeneration)
        CMAESSuggester.clearReplayCheckpoints()
        let b = try CMAESSuggester(context: context).suggest(count: 3, history: reloaded)
        #expect(a == b)
        #expect(!a.isEmpty)
        // The categorical distribution has moved from uniform: the replay told the generations.
        let state = try #require(CMAESSuggester(context: context).replay(reloaded).run.state as? CatCMAState)
        #expect(state.generation == 7 && state.q[0] != Array(repeating: 0.2, count: 5), "generation \(state.generation), q \(state.q)")
    }

    @Test func aSpaceOfCategoricalsAloneIsSearchedAndExhausted() throws {
        let space = SearchSpace([
            Parameter(name: "a", kind: .categorical(["x", "y", "z"])),
            Parameter(name: "b", kind: .categorical(["p", "q"])),
        ])
        let suggester = try CMAESSuggester(context: SuggesterContext(space: space, seed: 2))
        var history = History()
        while let next = try? suggester.suggest(count: 1, history: history).first {
            history.trials.append(.init(assignment: next.assignment, outcome: .completed(Double(history.trials.count)), metadata: next.metadata))
            if history.trials.count > 200 { break }
        }
        #expect(Set(history.trials.map { space.key($0.assignment) }).count == 6, "every point is tried")
        #expect(throws: SuggesterError.self) { try suggester.suggest(count: 1, history: history) }
    }

    @Test func aGenerationTriesEachChoiceInProportionAndEachMemberStillDrawsFromQ() {
        let state = CatCMAState(coordinates: [.continuous, .categorical(4), .categorical(3)], mean: [0.5], sigma: 0.2, lambda: 8)
        var counts = [[Int]](repeating: [0, 0, 0, 0], count: 2)
        var firstMember = [Int](repeating: 0, count: 4)
        for generation in 0..<2000 {
            let shared = SeededGenerator(seed: 9, stream: generation)
            var perGeneration = [Int](repeating: 0, count: 4)
            for index in 0..<8 {
                var rng = SeededGenerator(seed: 10, stream: generation * 8 + index)
                let raw = state.sample(&rng, member: index, shared: shared).raw
                perGeneration[Int(raw[1])] += 1
                counts[1][Int(raw[2])] += 1
                if index == 0 { firstMember[Int(raw[1])] += 1 }
            }
            // Four equally likely choices among eight members: each exactly twice.
            if perGeneration != [2, 2, 2, 2] { Issue.record("generation \(generation): \(perGeneration)"); break }
        }
        // One member alone draws each choice with its probability.
        #expect(firstMember.allSatisfy { abs(Double($0) / 2000 - 0.25) < 0.04 }, "\(firstMember)")
        #expect(counts[1].prefix(3).allSatisfy { abs(Double($0) / 16000 - 1.0 / 3) < 0.01 }, "\(counts[1])")
    }
}
