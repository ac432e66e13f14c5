import Foundation
import Testing
@testable import KnobAlgorithms

struct MultivariateTPETests {
    static let square = SearchSpace([
        Parameter(name: "x", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
        Parameter(name: "y", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
    ])

    static func make(_ space: SearchSpace, _ settings: [String: String] = [:], seed: UInt64 = 1) throws -> MultivariateTPESuggester {
        try MultivariateTPESuggester(context: SuggesterContext(space: space, settings: settings, seed: seed))
    }

    /// ∫∫ p over the square by the midpoint rule, for a few sets of observations.
    @Test(arguments: [0, 1, 6, 40])
    func densityIntegratesToOneIn2D(observations n: Int) throws {
        let suggester = try Self.make(Self.square)
        var rng = SeededGenerator(seed: UInt64(n + 1))
        let points = (0..<n).map { _ in [rng.unit() * rng.unit(), 0.3 + 0.4 * rng.unit()] }
        let estimator = MultivariateParzenEstimator(points: points, domains: suggester.core.domains, priorWeight: 1)
        let cells = 400
        var total = 0.0
        for i in 0..<cells {
            for j in 0..<cells {
                total += exp(estimator.logDensity([(Double(i) + 0.5) / Double(cells), (Double(j) + 0.5) / Double(cells)]))
            }
        }
        total /= Double(cells * cells)
        #expect(abs(total - 1) < 5e-3, "integral \(total) with \(n) observations")
    }

    /// A float, an int on a grid and a categorical: densities over the float, summed over the grid and choices.
    @Test func mixedDensitySumsToOne() throws {
        let space = SearchSpace([
            Parameter(name: "x", kind: .double(min: -2, max: 3, step: nil, scale: .linear)),
            Parameter(name: "n", kind: .int(min: 1, max: 6, step: 1, scale: .linear)),
            Parameter(name: "c", kind: .categorical(["a", "b", "c"])),
        ])
        let suggester = try Self.make(space)
        let group = [Assignment(["x": .double(0.5), "n": .int(2), "c": .string("b")]),
                     Assignment(["x": .double(-1.5), "n": .int(6), "c": .string("a")]),
                     Assignment(["x": .double(2.9), "n": .int(2), "c": .string("b")])]
        let estimator = suggester.estimator(over: group)
        guard case .numeric(let grid) = suggester.core.domains[1] else { Issue.record("n is not numeric"); return }
        let cells = 2000
        var total = 0.0
        for k in 0..<6 {
            let t = try #require(grid.coordinate(of: Double(k + 1)))
            for c in 0..<3 {
                for i in 0..<cells {
                    total += exp(estimator.logDensity([-2 + 5 * (Double(i) + 0.5) / Double(cells), t, Double(c)])) * 5 / Double(cells)
                }
            }
        }
        #expect(abs(total - 1) < 1e-3, "total mass \(total)")
    }

    /// The kernels are joint: good trials clustered at two opposite corners make those corners likely
    /// and the two other corners unlikely; independent per-parameter estimators would rate all four alike.
    @Test func kernelsKeepATrialsParametersTogether() throws {
        let suggester = try Self.make(Self.square)
        let points = (0..<20).map { i in [1, 1].map { _ in (i < 10 ? 0.08 : 0.88) + 0.004 * Double(i % 10) } }
        let estimator = MultivariateParzenEstimator(points: points, domains: suggester.core.domains, priorWeight: 1)
        let together = estimator.logDensity([0.1, 0.1]), apart = estimator.logDensity([0.1, 0.9])
        #expect(together > apart + 0.5, "log p at an observed corner \(together), at a mixed one \(apart)")
        var rng = SeededGenerator(seed: 5)
        let draws = (0..<400).map { _ in estimator.sample(&rng) }
        let sameSide = draws.filter { ($0[0] < 0.5) == ($0[1] < 0.5) }.count
        #expect(sameSide > 340, "\(sameSide) of 400 joint draws have both coordinates on the same side")
    }

    @Test func settingsAreItsOwnAndRangeChecked() throws {
        for (name, value) in [("gamma", "0.2"), ("prior_weight", "1"), ("n_EI_candidates", "24"), ("n_ei_candidates", "0"),
                              ("n_startup_trials", "-1"), ("random_state", "x")] {
            let error = #expect(throws: SuggesterError.self, "\(name)=\(value)") { try Self.make(Self.square, [name: value]) }
            if case .invalidSetting(let reported, _)? = error { #expect(reported == name) } else { Issue.record("\(name)=\(value): \(String(describing: error))") }
        }
        let suggester = try Self.make(Self.square, ["n_ei_candidates": "48", "n_startup_trials": "4", "random_state": "9"])
        #expect(suggester.core.candidates == 48 && suggester.core.startupTrials == 4 && suggester.core.seed == 9)
        let defaults = try Self.make(Self.square)
        #expect(defaults.core.candidates == 24 && defaults.core.startupTrials == 10 && defaults.core.priorWeight == 1)
    }

    @Test func beatsRandomSearchOnBranin() throws {
        func best(_ suggester: some Suggester) throws -> Double {
            var history = History()
            for _ in 0..<60 {
                let next = try #require(try suggester.suggest(count: 1, history: history).first)
                history.trials.append(.init(assignment: next.assignment, outcome: .completed(TPESuggesterTests.branin(Self.square.encode(next.assignment)))))
            }
            return history.completed.map(\.value).min() ?? .infinity
        }
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        let seeds: [UInt64] = Array(1...9)
        let tpe = try median(seeds.map { try best(Self.make(Self.square, seed: $0)) })
        let random = try median(seeds.map { try best(RandomSuggester(context: SuggesterContext(space: Self.square, seed: $0))) })
        #expect(tpe < random, "median best after 60 trials: multivariate-tpe \(tpe), random \(random)")
        #expect(tpe - 0.397887 < 0.2, "multivariate-tpe's median regret after 60 trials is \(tpe - 0.397887)")
    }

    /// Four pending at a time: no assignment repeats, and every suggestion lies in the space.
    @Test func aBatchWithPendingTrialsHasNoDuplicates() throws {
        let suggester = try Self.make(Self.square, ["n_startup_trials": "3"])
        var history = History()
        for _ in 0..<10 {
            for suggestion in try suggester.suggest(count: 4, history: history) {
                #expect(Self.square.contains(suggestion.assignment))
                history.trials.append(.init(assignment: suggestion.assignment, outcome: .pending))
            }
            for i in history.trials.indices where history.trials[i].outcome == .pending && i % 2 == 0 {
                history.trials[i].outcome = .completed(TPESuggesterTests.branin(Self.square.encode(history.trials[i].assignment)))
            }
        }
        let keys = history.trials.map { Self.square.key($0.assignment) }
        #expect(Set(keys).count == keys.count)
    }
}
