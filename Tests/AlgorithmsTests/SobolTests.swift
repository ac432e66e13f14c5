import Foundation
import Testing
@testable import KnobAlgorithms

@Suite struct SobolSuggesterTests {
    /// A space whose values are the unit-cube coordinates themselves.
    static func unitCube(_ dimension: Int) -> SearchSpace {
        SearchSpace((0..<dimension).map { Parameter(name: "x\($0)", kind: .double(min: 0, max: 1, step: nil, scale: .linear)) })
    }

    static func coordinates(_ suggestions: [Suggestion], dimension: Int) -> [[Double]] {
        suggestions.map { s in (0..<dimension).map { s.assignment["x\($0)"]?.numericValue ?? .nan } }
    }

    /// The shapes (d_1, …, d_s) with d_j ≥ 0 and Σ d_j = k: each names the 2^k elementary intervals
    /// ∏ [a_j 2^−d_j, (a_j+1) 2^−d_j), of volume 2^−k.
    static func shapes(dimension: Int, total: Int) -> [[Int]] {
        guard dimension > 1 else { return [[total]] }
        return (0...total).flatMap { first in shapes(dimension: dimension - 1, total: total - first).map { [first] + $0 } }
    }

    /// A t-value of the projection of the Sobol sequence onto `dimensions`: 0 for one dimension (its
    /// generator matrix is invertible), else Σ (degree − 1) of their primitive polynomials (Sobol 1967;
    /// the first dimension's polynomial is x, of degree 1).
    static func tValue(_ dimensions: [Int]) -> Int {
        guard dimensions.count > 1 else { return 0 }
        return dimensions.reduce(0) { t, j in t + (j == 0 ? 0 : SobolSequence.table[j - 1].s - 1) }
    }

    /// The number of the first `count` points in each elementary interval of `shape`.
    static func counts(_ points: ArraySlice<[Double]>, shape: [Int]) -> [Int] {
        var counts = [Int](repeating: 0, count: 1 << shape.reduce(0, +))
        for point in points {
            var cell = 0
            for (x, d) in zip(point, shape) where d > 0 { cell = cell << d | min((1 << d) - 1, Int(x * Double(1 << d))) }
            counts[cell] += 1
        }
        return counts
    }

    /// The net property, through the suggester's own points: for every shape of volume 2^−k
    /// (k ≤ 4, and k ≤ 8 on the first two dimensions), the first 2^(k+t) points put exactly 2^t in
    /// each elementary interval, t being the t-value of the dimensions the shape splits. Where
    /// t = 0 — every shape over the first two dimensions, and each dimension alone — that is
    /// exactly one of the first 2^k points per interval. (For other pairs t > 0: the first four
    /// points of Sobol's dimensions 2 and 3 do not split into the four quarters of their square.)
    @Test(arguments: 2...10)
    func eachElementaryIntervalHoldsItsShareOfTheFirstPoints(dimension: Int) throws {
        let maxPoints = 1 << 12
        let suggester = try SobolSuggester(context: SuggesterContext(space: Self.unitCube(dimension), seed: 2024))
        let points = Self.coordinates(try suggester.suggest(count: maxPoints, history: History()), dimension: dimension)
        var shapes = (1...4).flatMap { Self.shapes(dimension: dimension, total: $0) }
        shapes += (5...8).flatMap { k in Self.shapes(dimension: 2, total: k).map { $0 + [Int](repeating: 0, count: dimension - 2) } }
        var checked = 0, exactlyOne = 0
        for shape in shapes {
            let t = Self.tValue(shape.indices.filter { shape[$0] > 0 })
            let k = shape.reduce(0, +)
            guard k + t <= 12 else { continue }
            let counts = Self.counts(points.prefix(1 << (k + t)), shape: shape)
            #expect(counts.allSatisfy { $0 == 1 << t }, "dimension \(dimension), shape \(shape): counts \(Set(counts)) instead of \(1 << t) each")
            checked += 1
            if t == 0 { exactlyOne += 1 }
        }
        // Every 1-, 2-, 3- and 4-split shape with its t-value within reach, and all the t = 0 ones.
        #expect(checked >= shapes.count / 2, "only \(checked) of \(shapes.count) shapes checked")
        // Exactly one point per interval: the 44 shapes over the first two dimensions, and the
        // others dimensions' own 1- to 4-splits.
        #expect(exactlyOne == 44 + 4 * (dimension - 2))
    }

    /// The test above is not vacuous: a uniform random sample fails it.
    @Test func randomPointsDoNotHaveTheNetProperty() throws {
        let random = try RandomSuggester(context: SuggesterContext(space: Self.unitCube(2), seed: 1))
        let points = Self.coordinates(try random.suggest(count: 16, history: History()), dimension: 2)
        let failing = Self.shapes(dimension: 2, total: 4).filter { Self.counts(points[...], shape: $0).contains { $0 != 1 } }
        #expect(!failing.isEmpty)
    }

    static func history(_ suggestions: ArraySlice<Suggestion>) -> History {
        History(suggestions.enumerated().map { i, s in
            .init(assignment: s.assignment, outcome: i % 3 == 2 ? .pending : i % 3 == 1 ? .failed : .completed(Double(i)))
        })
    }

    @Test func aRestartContinuesTheSameSequence() throws {
        let space = SearchSpace([
            Parameter(name: "lr", kind: .double(min: 1e-4, max: 1, step: nil, scale: .log)),
            Parameter(name: "layers", kind: .int(min: 1, max: 8, step: 1, scale: .linear)),
            Parameter(name: "opt", kind: .categorical(["sgd", "adam", "rmsprop"])),
        ])
        let context = SuggesterContext(space: space, settings: ["random_state": "11"], seed: 0)
        let long = try SobolSuggester(context: context).suggest(count: 12, history: History())
        #expect(Set(long.map { space.key($0.assignment) }).count == 12)
        // A new process, five trials in (some pending), proposes the 6th…12th points.
        let restarted = try SobolSuggester(context: context).suggest(count: 7, history: Self.history(long[0..<5]))
        #expect(restarted == Array(long[5..<12]))
        // One at a time gives the same points too.
        var history = History()
        for _ in 0..<12 { history.trials += Self.history(try SobolSuggester(context: context).suggest(count: 1, history: history)[...]).trials }
        #expect(history.trials.map(\.assignment) == long.map(\.assignment))
    }

    @Test func aFiniteSpaceIsCoveredWithoutRepeatsAcrossRestartsThenExhausted() throws {
        let space = SearchSpace([
            Parameter(name: "a", kind: .int(min: 0, max: 2, step: 1, scale: .linear)),
            Parameter(name: "b", kind: .categorical(["x", "y"])),
            Parameter(name: "c", kind: .double(min: 0.5, max: 1.5, step: 0.5, scale: .linear)),
        ])
        let suggester = try SobolSuggester(context: SuggesterContext(space: space, seed: 5))
        let long = try suggester.suggest(count: 18, history: History())
        #expect(long.count == 18 && Set(long.map { space.key($0.assignment) }).count == 18)
        #expect(try suggester.suggest(count: 11, history: Self.history(long[0..<7])) == Array(long[7..<18]))
        #expect(throws: SuggesterError.exhausted) { try suggester.suggest(count: 1, history: Self.history(long[...])) }
        // Asking for more than is left returns what is left.
        #expect(try suggester.suggest(count: 5, history: Self.history(long[0..<16])).count == 2)
    }

    @Test func aHugeFiniteSpaceIsNotEnumerated() throws {
        let space = SearchSpace([
            Parameter(name: "n", kind: .int(min: 0, max: 1_000_000_000_000, step: 1, scale: .linear)),
            Parameter(name: "m", kind: .int(min: -1_000_000_000, max: 1_000_000_000, step: 1, scale: .linear)),
        ])
        let start = Date()
        let suggestions = try SobolSuggester(context: SuggesterContext(space: space, seed: 5)).suggest(count: 200, history: History())
        #expect(suggestions.count == 200 && suggestions.allSatisfy { space.contains($0.assignment) })
        #expect(Date().timeIntervalSince(start) < 5)
    }

    @Test func theSeedIsRandomState() throws {
        let space = Self.unitCube(3)
        func points(_ settings: [String: String], seed: UInt64) throws -> [Suggestion] {
            try SobolSuggester(context: SuggesterContext(space: space, settings: settings, seed: seed)).suggest(count: 4, history: History())
        }
        #expect(try points(["random_state": "5"], seed: 1) == points(["random_state": "5"], seed: 2))
        #expect(try points(["random_state": "5"], seed: 1) != points(["random_state": "6"], seed: 1))
        #expect(try points([:], seed: 1) != points([:], seed: 2))
        #expect(throws: SuggesterError.invalidSetting(name: "n_initial_points", message: "not a setting of sobol; it accepts random_state")) {
            try SobolSuggester(context: SuggesterContext(space: space, settings: ["n_initial_points": "3"], seed: 1))
        }
    }

    @Test func moreParametersThanTheSequenceHasDimensionsAreRefusedByName() throws {
        let limit = SobolSequence.maxDimension
        #expect(try SobolSuggester(context: SuggesterContext(space: Self.unitCube(limit), seed: 1)).suggest(count: 2, history: History()).count == 2)
        let error = #expect(throws: SuggesterError.self) {
            try SobolSuggester(context: SuggesterContext(space: Self.unitCube(limit + 1), seed: 1))
        }
        guard case .unsupportedSpace(let parameter, let message)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(parameter == "x\(limit)" && message.contains("at most \(limit) parameters"))
    }

    @Test func anEmptySpaceDoesNotTrap() throws {
        let suggester = try SobolSuggester(context: SuggesterContext(space: SearchSpace([]), seed: 1))
        let first = try suggester.suggest(count: 3, history: History())
        #expect(first.count == 1)
        #expect(throws: SuggesterError.exhausted) { try suggester.suggest(count: 1, history: Self.history(first[...])) }
    }

    @Test func aNormalParameterIsDrawnFromItsNormal() throws {
        let space = SearchSpace([Parameter(name: "x", kind: .double(min: 0, max: 6, step: nil, scale: .linear), distribution: .normal)])
        let values = try SobolSuggester(context: SuggesterContext(space: space, seed: 3)).suggest(count: 1024, history: History())
            .compactMap { $0.assignment["x"]?.numericValue }
        let (mean, sd) = DistributionTests.meanAndSD(values)
        #expect(abs(mean - 3) < 0.02 && abs(sd - DistributionTests.truncatedSD) < 0.02, "mean \(mean), sd \(sd)")
    }
}
