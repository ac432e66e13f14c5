import Foundation
import Testing
@testable import KnobAlgorithms

@Suite struct ParzenEstimatorTests {
    @Test func recentTrialsWeighFullyAndOlderOnesRampUp() {
        #expect(ParzenWeights.recency(count: 0).isEmpty)
        #expect(ParzenWeights.recency(count: 25) == Array(repeating: 1, count: 25))
        let w = ParzenWeights.recency(count: 30)
        #expect(w.count == 30)
        #expect(abs(w[0] - 1.0 / 30) < 1e-15)
        #expect(Array(w[4...]) == Array(repeating: 1, count: 26), "the ramp ends at 1, then the newest 25 are flat")
        #expect(zip(w, w.dropFirst()).allSatisfy { $0 <= $1 }, "older trials never weigh more")
        let one = ParzenWeights.recency(count: 26)
        #expect(abs(one[0] - 1.0 / 26) < 1e-15 && one[1] == 1)
    }

    @Test(arguments: [0, 1, 7, 60])
    func mixtureWeightsSumToOneWithThePriorLast(_ n: Int) {
        let weights = ParzenWeights.mixture(ParzenWeights.recency(count: n), priorWeight: 2.5)
        #expect(weights.count == n + 1)
        #expect(abs(weights.reduce(0, +) - 1) < 1e-12)
        if n > 0 {
            // The prior weighs prior_weight against each fully weighted trial's 1.
            #expect(abs(weights[n] / weights[n - 1] - 2.5) < 1e-12)
        }
        let mixture = TruncatedGaussianMixture(observations: (0..<n).map { Double($0 % 10) }, observationWeights: ParzenWeights.recency(count: n),
                                               priorWeight: 2.5, lo: 0, hi: 10)
        #expect(abs(mixture.weights.reduce(0, +) - 1) < 1e-12)
    }

    @Test func bandwidthsAreTheGapsToNeighboursWithInwardEndsAndMagicClip() {
        // Sorted, between the bounds: 0 30 45 47 52 55 58 70 80 100.
        // Gaps: 30 looks inward only (15, not 30), 80 too (10, not 20); the rest take the larger
        // neighbouring gap; magic clip raises everything to (100 − 0)/min(100, 8 + 2) = 10.
        let observations: [Double] = [58, 30, 80, 47, 70, 52, 45, 55]
        let sigmas = TruncatedGaussianMixture.bandwidths(observations, lo: 0, hi: 100)
        #expect(sigmas == [12, 15, 10, 10, 12, 10, 15, 10])
        // The prior is the widest kernel, at the centre.
        let mixture = TruncatedGaussianMixture(observations: observations, observationWeights: ParzenWeights.recency(count: 8),
                                               priorWeight: 1, lo: 0, hi: 100)
        #expect(mixture.mus.last == 50 && mixture.sigmas.last == 100)
        // A single observation takes its larger gap, here the whole range, never more.
        #expect(TruncatedGaussianMixture.bandwidths([0], lo: 0, hi: 1) == [1])
        #expect(TruncatedGaussianMixture.bandwidths([0.25], lo: 0, hi: 1) == [0.75])
        #expect(TruncatedGaussianMixture.bandwidths([0.5, 0.5, 0.5], lo: 0, hi: 1).allSatisfy { $0 >= 0.2 - 1e-15 })
    }

    @Test(arguments: [0, 1, 5, 40])
    func truncatedMixtureDensityIntegratesToOne(_ n: Int) {
        var rng = SeededGenerator(seed: UInt64(n))
        let observations = (0..<n).map { _ in -2 + 5 * rng.unit() * rng.unit() }
        let mixture = TruncatedGaussianMixture(observations: observations, observationWeights: ParzenWeights.recency(count: n),
                                               priorWeight: 1, lo: -2, hi: 3)
        // Simpson's rule over the box.
        let steps = 20_000, h = 5.0 / Double(steps)
        var integral = 0.0
        for i in 0...steps {
            let factor: Double = i == 0 || i == steps ? 1 : i % 2 == 1 ? 4 : 2
            integral += factor * exp(mixture.logDensity(-2 + Double(i) * h))
        }
        integral *= h / 3
        #expect(abs(integral - 1) < 1e-6, "∫ l(x) dx = \(integral)")
        // Draws stay in the box.
        for _ in 0..<1000 {
            let x = mixture.sample(&rng)
            #expect(x >= -2 && x <= 3)
        }
    }

    @Test func gridCellsOfALogScaledIntHoldAllTheMass() throws {
        let parameter = Parameter(name: "n", kind: .int(min: 1, max: 20, step: 1, scale: .log))
        let domain = try #require(NumericDomain(parameter))
        let observations = [1.0, 2, 2, 17].compactMap(domain.coordinate(of:))
        let mixture = TruncatedGaussianMixture(observations: observations, observationWeights: [1, 1, 1, 1], priorWeight: 1, lo: domain.lo, hi: domain.hi)
        var total = 0.0
        for k in 0..<20 {
            let cell = domain.cell(k)
            total += exp(mixture.logMass(from: cell.lower, to: cell.upper))
        }
        #expect(abs(total - 1) < 1e-9, "the cells' masses sum to \(total)")
        // Draws snap onto the grid, within bounds.
        var rng = SeededGenerator(seed: 3)
        for _ in 0..<200 {
            let k = domain.gridIndex(atCoordinate: mixture.sample(&rng))
            #expect((0..<20).contains(k))
        }
    }

    @Test func logMassStaysFiniteFarInTheTails() {
        let far = TruncatedNormal.logMass(40, 40.5)
        #expect(far.isFinite && far < -800)
        #expect(abs(TruncatedNormal.logMass(-40.5, -40) - far) < 1e-9, "symmetric")
        #expect(abs(TruncatedNormal.logMass(-1, 2) - log(Normal.cdf(2) - Normal.cdf(-1))) < 1e-14)
        // The asymptotic branch meets the direct one where both are accurate.
        let direct = log(Normal.cdf(-30) - Normal.cdf(-30.5))
        #expect(abs(TruncatedNormal.logUpperTailMass(30, 30.5) - direct) < 1e-9)
    }

    @Test func categoricalProbabilitiesSumToOneAndFavourObservedChoices() {
        let empty = CategoricalParzenEstimator(observations: [], observationWeights: [], priorWeight: 1, choices: 4)
        #expect(empty.probabilities == [0.25, 0.25, 0.25, 0.25])
        let estimator = CategoricalParzenEstimator(observations: [0, 0, 2], observationWeights: [1, 1, 1], priorWeight: 1, choices: 3)
        #expect(abs(estimator.probabilities.reduce(0, +) - 1) < 1e-12)
        let p = estimator.probabilities
        #expect(p[0] > p[2] && p[2] > p[1] && p[1] > 0)
        // Each observation's kernel: 1 + 1/4 on its choice and 1/4 on the others, over 1.75; the prior uniform.
        let expected0 = 0.25 * (2 * 1.25 / 1.75 + 0.25 / 1.75) + 0.25 / 3
        #expect(abs(p[0] - expected0) < 1e-12)
        // A larger prior weight flattens it.
        let flatter = CategoricalParzenEstimator(observations: [0, 0, 2], observationWeights: [1, 1, 1], priorWeight: 10, choices: 3)
        #expect(flatter.probabilities[0] < p[0] && abs(flatter.probabilities.reduce(0, +) - 1) < 1e-12)
    }
}

@Suite struct TPESuggesterTests {
    static let mixed = SearchSpace([
        Parameter(name: "lr", kind: .double(min: 0.001, max: 0.1, step: nil, scale: .log)),
        Parameter(name: "m", kind: .double(min: 0.5, max: 0.9, step: 0.1, scale: .linear)),
        Parameter(name: "layers", kind: .int(min: 1, max: 4, step: 1, scale: .linear)),
        Parameter(name: "batch", kind: .discrete(["16", "32", "64"])),
        Parameter(name: "opt", kind: .categorical(["sgd", "adam"])),
        Parameter(name: "fixed", kind: .int(min: 3, max: 3, step: 1, scale: .linear)),
    ])
    static let tiny = SearchSpace([
        Parameter(name: "a", kind: .int(min: 0, max: 2, step: 1, scale: .linear)),
        Parameter(name: "b", kind: .categorical(["x", "y"])),
    ])

    static func make(_ space: SearchSpace, _ settings: [String: String] = ["n_startup_trials": "3"], seed: UInt64 = 7) throws -> TPESuggester {
        try TPESuggester(context: SuggesterContext(space: space, settings: settings, seed: seed))
    }

    /// A history grown one suggestion at a time on `f`, with every fifth trial failed.
    static func run(_ suggester: some Suggester, _ space: SearchSpace, trials: Int, f: ([Double]) -> Double) throws -> History {
        var history = History()
        while history.trials.count < trials {
            let suggestions: [Suggestion]
            do {
                suggestions = try suggester.suggest(count: 1, history: history)
            } catch SuggesterError.exhausted {
                break
            }
            guard let next = suggestions.first else { break }
            let value = f(space.encode(next.assignment))
            history.trials.append(.init(assignment: next.assignment, outcome: history.trials.count % 5 == 4 ? .failed : .completed(value)))
        }
        return history
    }

    static func sphere(_ u: [Double]) -> Double { u.reduce(0) { $0 + ($1 - 0.3) * ($1 - 0.3) } }

    @Test func settingsAreRangeChecked() throws {
        let space = Self.tiny
        for (name, value) in [("gamma", "0"), ("gamma", "1"), ("gamma", "abc"), ("gamma", "nan"), ("prior_weight", "0"), ("prior_weight", "-1"),
                              ("prior_weight", "inf"), ("n_EI_candidates", "0"), ("n_ei_candidates", "1.5"), ("n_startup_trials", "-1"),
                              ("random_state", "x"), ("n_ei", "3"), ("multivariate", "yes")] {
            let error = #expect(throws: SuggesterError.self, "\(name)=\(value)") { try Self.make(space, [name: value]) }
            if case .invalidSetting(let reported, _)? = error { #expect(reported == name) } else { Issue.record("\(name)=\(value): \(String(describing: error))") }
        }
        #expect(throws: SuggesterError.self) { try Self.make(space, ["n_EI_candidates": "5", "n_ei_candidates": "6"]) }
        let suggester = try Self.make(space, ["gamma": " 0.25 ", "prior_weight": "2", "n_EI_candidates": "64", "n_startup_trials": "0", "random_state": "-3"])
        #expect(suggester.gamma == 0.25 && suggester.priorWeight == 2 && suggester.candidates == 64 && suggester.startupTrials == 0)
        #expect(suggester.seed == UInt64(bitPattern: -3))
        let defaults = try Self.make(space, [:])
        #expect(defaults.gamma == nil && defaults.priorWeight == 1 && defaults.candidates == 24 && defaults.startupTrials == 10)
        #expect(try Self.make(space, ["n_ei_candidates": "8"]).candidates == 8)
        #expect(defaults.model == .standard(multivariate: true))
        #expect(try Self.make(space, ["multivariate": " False"]).model == .standard(multivariate: false))
        #expect(try Self.make(space, ["multivariate": "true"]).model.multivariate)
    }

    /// With its defaults `tpe` runs `multivariate-tpe`'s model: same seed and history, same suggestions.
    @Test func defaultsRunTheJointModel() throws {
        let space = Self.mixed
        let history = try Self.run(RandomSuggester(context: SuggesterContext(space: space, seed: 3)), space, trials: 14, f: Self.sphere)
        let tpe = try Self.make(space, [:]).suggest(count: 3, history: history)
        let joint = try MultivariateTPESuggester(context: SuggesterContext(space: space, seed: 7)).suggest(count: 3, history: history)
        #expect(tpe == joint)
        let independent = try Self.make(space, ["multivariate": "false"]).suggest(count: 3, history: history)
        #expect(independent != tpe)
    }

    /// Good trials weigh by how much they improve on the bad group's best value, the prior by
    /// `prior_weight` times their mean; bad trials alike. Optuna's weights go by recency only.
    @Test func goodTrialsWeighByImprovement() throws {
        let model = TPEModel.standard()
        #expect(model.goodWeights(values: [1, 2.5, 2], threshold: 3) == [2, 0.5, 1])
        #expect(model.goodWeights(values: [3], threshold: 3) == [1e-12])
        #expect(model.goodWeights(values: [1, 2], threshold: .nan) == [1, 1], "no bad trial: alike")
        #expect(model.weights(count: 30) == [Double](repeating: 1, count: 30))
        #expect(abs(model.priorWeight(2, beside: [2, 0.5, 1]) - 7.0 / 3) < 1e-12)
        let optuna = TPEModel.optuna(multivariate: false)
        #expect(optuna.goodWeights(values: [1, 2.5, 2], threshold: 3) == [1, 1, 1])
        #expect(optuna.weights(count: 30) == ParzenWeights.recency(count: 30))
        #expect(optuna.priorWeight(2, beside: [2, 0.5, 1]) == 2)

        // Two good trials, the first much better: the good density is higher at it.
        let space = SearchSpace([Parameter(name: "x", kind: .double(min: 0, max: 1, step: nil, scale: .linear))])
        var history = History()
        for (x, y) in [(0.2, 0.0), (0.8, 1.9)] + (1...18).map({ (0.05 * Double($0), 1.0 + Double($0)) }) {
            history.trials.append(.init(assignment: Assignment(["x": .double(x)]), outcome: .completed(y)))
        }
        let suggester = try Self.make(space, ["gamma": "0.1", "multivariate": "false"])
        let split = suggester.split(history)
        #expect(split.good == [0, 1] && split.threshold == 2)
        guard case .numeric(let domain) = suggester.domains[0] else { Issue.record("x is not numeric"); return }
        let good = split.good.map { history.trials[$0].assignment }
        let weights = suggester.model.goodWeights(values: [0, 1.9], threshold: split.threshold)
        let l = suggester.mixture(domain, over: good, weights: weights)
        #expect(l.logDensity(0.2) > l.logDensity(0.8) + 0.2, "log l at the better trial \(l.logDensity(0.2)), at the worse \(l.logDensity(0.8))")
        let alike = suggester.with(model: .optuna(multivariate: false)).mixture(domain, over: good)
        #expect(abs(alike.logDensity(0.2) - alike.logDensity(0.8)) < 1e-9, "equal weights, mirror-image kernels")
    }

    @Test func goodGroupSizeFollowsOptunasScheduleOrGamma() throws {
        let optuna = try Self.make(Self.tiny, [:])
        #expect([0, 1, 10, 11, 100, 249, 251, 1000].map(optuna.goodCount(completed:)) == [0, 1, 1, 2, 10, 25, 25, 25])
        let hyperopt = try Self.make(Self.tiny, ["gamma": "0.25"])
        #expect([1, 4, 5, 100, 1000].map(hyperopt.goodCount(completed:)) == [1, 1, 2, 25, 250])
    }

    @Test func pendingAndFailedTrialsJoinTheBadGroup() throws {
        let suggester = try Self.make(Self.tiny, [:])
        let a = Assignment(["a": .int(0), "b": .string("x")])
        let outcomes: [History.Trial.Outcome] = [.completed(5), .pending, .failed, .completed(1), .completed(.nan), .completed(3)]
        let history = History(outcomes.map { History.Trial(assignment: a, outcome: $0) })
        let split = suggester.split(history)
        #expect(split.completed == 3)
        #expect(split.good == [3])
        #expect(split.bad == [0, 1, 2, 4, 5])
        #expect(split.threshold == 3)
    }

    @Test func startupTrialsAreRandomSearchsSuggestions() throws {
        let space = Self.mixed
        let history = try Self.run(RandomSuggester(context: SuggesterContext(space: space, seed: 7)), space, trials: 6, f: Self.sphere)
        let tpe = try Self.make(space, [:]).suggest(count: 3, history: history)
        let random = try RandomSuggester(context: SuggesterContext(space: space, seed: 7)).suggest(count: 3, history: history)
        #expect(tpe == random)
    }

    @Test func modelSuggestionsAreValidReproducibleAndDistinct() throws {
        for space in [Self.mixed, Self.tiny, SuggesterConformanceTests.spaces[0].1, SuggesterConformanceTests.spaces[1].1, SuggesterConformanceTests.spaces[2].1] {
            let suggester = try Self.make(space)
            var history = try Self.run(suggester, space, trials: 5, f: Self.sphere)
            guard let pending = try? suggester.suggest(count: 1, history: history).first else { continue }
            history.trials.append(.init(assignment: pending.assignment, outcome: .pending))
            let suggestions: [Suggestion]
            do {
                suggestions = try suggester.suggest(count: 3, history: history)
            } catch SuggesterError.exhausted {
                continue
            }
            for suggestion in suggestions {
                #expect(space.contains(suggestion.assignment), "\(suggestion.assignment) is not in the space")
            }
            #expect(try Self.make(space).suggest(count: 3, history: history) == suggestions, "same seed and history, same suggestions")
            #expect(try Self.make(space, ["n_startup_trials": "3"], seed: 8).suggest(count: 3, history: history) != suggestions || space.cardinality != nil)
            if space.cardinality != nil {
                let keys = suggestions.map { space.key($0.assignment) }
                #expect(Set(keys).count == keys.count, "duplicates within one batch")
                #expect(Set(history.trials.map { space.key($0.assignment) }).isDisjoint(with: keys), "repeats an assignment of the history")
            }
        }
    }

    @Test func aFiniteSpaceIsUsedUpThenExhausted() throws {
        let suggester = try Self.make(Self.tiny, ["n_startup_trials": "1"])
        let history = try Self.run(suggester, Self.tiny, trials: 6, f: Self.sphere)
        #expect(Set(history.trials.map { Self.tiny.key($0.assignment) }).count == 6)
        #expect(throws: SuggesterError.exhausted) { try suggester.suggest(count: 1, history: history) }
    }

    @Test func theConstantLiarSpreadsABatch() throws {
        // Trials near x = 30 were good: the first suggestion goes there, and the next ones, seeing it
        // pending, go elsewhere.
        let space = SearchSpace([Parameter(name: "x", kind: .int(min: 1, max: 100, step: 1, scale: .linear))])
        var history = History()
        for x in stride(from: 5, through: 95, by: 5) {
            history.trials.append(.init(assignment: Assignment(["x": .int(x)]), outcome: .completed(Double(abs(x - 30)))))
        }
        let batch = try Self.make(space).suggest(count: 4, history: history)
        let xs = batch.compactMap { $0.assignment["x"]?.numericValue }
        #expect(Set(xs).count == 4, "\(xs)")
        #expect(xs.first.map { abs($0 - 30) <= 10 } == true, "the first suggestion is in the good region: \(xs)")
    }

    /// Branin on [-5, 10] × [0, 15], minimum 0.397887.
    static func branin(_ u: [Double]) -> Double {
        let x = -5 + 15 * u[0], y = 15 * u[1]
        let a = y - 5.1 / (4 * Double.pi * Double.pi) * x * x + 5 / Double.pi * x - 6
        return a * a + 10 * (1 - 1 / (8 * Double.pi)) * cos(x) + 10
    }

    @Test func beatsRandomSearchOnBranin() throws {
        let space = SearchSpace([
            Parameter(name: "x", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
            Parameter(name: "y", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
        ])
        func best(_ suggester: some Suggester) throws -> Double {
            var history = History()
            for _ in 0..<60 {
                let next = try #require(try suggester.suggest(count: 1, history: history).first)
                history.trials.append(.init(assignment: next.assignment, outcome: .completed(Self.branin(space.encode(next.assignment)))))
            }
            return history.completed.map(\.value).min() ?? .infinity
        }
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        let seeds: [UInt64] = [1, 2, 3, 4, 5]
        let random = try median(seeds.map { try best(RandomSuggester(context: SuggesterContext(space: space, seed: $0))) })
        for multivariate in ["true", "false"] {
            let settings = ["multivariate": multivariate]
            let tpe = try median(seeds.map { try best(TPESuggester(context: SuggesterContext(space: space, settings: settings, seed: $0))) })
            #expect(tpe < random, "median best after 60 trials: tpe (multivariate \(multivariate)) \(tpe), random \(random)")
            #expect(tpe - 0.397887 < 0.5, "tpe's (multivariate \(multivariate)) median regret after 60 trials is \(tpe - 0.397887)")
        }
    }
}
