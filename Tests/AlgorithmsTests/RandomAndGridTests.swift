import Testing
@testable import KnobAlgorithms

@Suite struct RandomSuggesterTests {
    @Test func logUniformSamplesAreSpreadOverDecades() throws {
        let space = SearchSpace([Parameter(name: "lr", kind: .double(min: 1e-5, max: 1e-1, step: nil, scale: .log))])
        let suggester = try RandomSuggester(context: SuggesterContext(space: space, seed: 3))
        let values = try suggester.suggest(count: 4000, history: History()).compactMap { $0.assignment["lr"]?.numericValue }
        // Each of the four decades gets about a quarter of the samples.
        for decade in 0..<4 {
            let low = 1e-5 * pow10(decade), high = low * 10
            let share = Double(values.filter { $0 >= low && $0 < high }.count) / Double(values.count)
            #expect(abs(share - 0.25) < 0.04, "decade \(decade) has \(share)")
        }
    }

    @Test func randomStateSettingIsTheSeed() throws {
        let space = SuggesterConformanceTests.spaces[3].1
        let a = try RandomSuggester(context: SuggesterContext(space: space, settings: ["random_state": "5"], seed: 1))
        let b = try RandomSuggester(context: SuggesterContext(space: space, settings: ["random_state": "5"], seed: 2))
        let c = try RandomSuggester(context: SuggesterContext(space: space, settings: ["random_state": "6"], seed: 1))
        #expect(try a.suggest(count: 3, history: History()) == b.suggest(count: 3, history: History()))
        #expect(try a.suggest(count: 3, history: History()) != c.suggest(count: 3, history: History()))
        #expect(throws: SuggesterError.self) {
            try RandomSuggester(context: SuggesterContext(space: space, settings: ["random_state": "abc"], seed: 1))
        }
    }

    @Test func aFiniteSpaceIsCoveredWithoutRepeatsThenExhausted() throws {
        let space = SuggesterConformanceTests.spaces[4].1
        let suggester = try RandomSuggester(context: SuggesterContext(space: space, seed: 9))
        var history = History()
        while let next = try? suggester.suggest(count: 4, history: history) {
            history.trials += next.map { .init(assignment: $0.assignment, outcome: .pending) }
        }
        #expect(history.trials.count == 6)
        #expect(Set(history.trials.map { space.key($0.assignment) }).count == 6)
        #expect(throws: SuggesterError.exhausted) { try suggester.suggest(count: 1, history: history) }
    }

    private func pow10(_ n: Int) -> Double { (0..<n).reduce(1.0) { acc, _ in acc * 10 } }
}

@Suite struct GridSuggesterTests {
    @Test func enumeratesEveryPointOnceFirstParameterSlowestThenIsExhausted() throws {
        let space = SearchSpace([
            Parameter(name: "a", kind: .int(min: 1, max: 3, step: 2, scale: .linear)),
            Parameter(name: "b", kind: .categorical(["x", "y", "z"])),
        ])
        let grid = try GridSuggester(context: SuggesterContext(space: space, seed: 0))
        #expect(grid.size == 6)
        var history = History()
        var order: [String] = []
        while let next = try? grid.suggest(count: 4, history: history) {
            order += next.map { "\($0.assignment["a"]!)\($0.assignment["b"]!)" }
            history.trials += next.map { .init(assignment: $0.assignment, outcome: .completed(0)) }
        }
        #expect(order == ["1x", "1y", "1z", "3x", "3y", "3z"])
        #expect(throws: SuggesterError.exhausted) { try grid.suggest(count: 1, history: history) }
    }

    @Test func doublesNeedAStepOrGridPoints() throws {
        let space = SearchSpace([Parameter(name: "lr", kind: .double(min: 0.001, max: 0.1, step: nil, scale: .log))])
        #expect(throws: SuggesterError.self) { try GridSuggester(context: SuggesterContext(space: space, seed: 0)) }
        let grid = try GridSuggester(context: SuggesterContext(space: space, settings: ["grid_points": "3"], seed: 0))
        let values = try grid.suggest(count: 3, history: History()).compactMap { $0.assignment["lr"]?.numericValue }
        #expect(values.count == 3)
        #expect(abs(values[0] - 0.001) < 1e-12 && abs(values[1] - 0.01) < 1e-9 && abs(values[2] - 0.1) < 1e-9)
        #expect(throws: SuggesterError.self) {
            try GridSuggester(context: SuggesterContext(space: space, settings: ["grid_points": "1"], seed: 0))
        }
    }

    @Test func skipsPointsAlreadyPendingOrDone() throws {
        let space = SearchSpace([Parameter(name: "x", kind: .double(min: 0, max: 1, step: 0.5, scale: .linear))])
        let grid = try GridSuggester(context: SuggesterContext(space: space, seed: 0))
        let history = History([.init(assignment: Assignment(["x": .double(0.5)]), outcome: .pending)])
        let next = try grid.suggest(count: 5, history: history).map { $0.assignment["x"]!.description }
        #expect(next == ["0", "1"])
    }
}
