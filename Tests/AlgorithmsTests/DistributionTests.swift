import Foundation
import Testing
@testable import KnobAlgorithms

/// `normal` and `logNormal`: μ = (min+max)/2, σ = (max−min)/6 (in log units for logNormal),
/// truncated to the bounds.
@Suite struct DistributionTests {
    /// The standard deviation of a standard normal truncated to ±3: √(1 − 6φ(3)/(Φ(3) − Φ(−3))).
    static let truncatedSD = (1 - 6 * Normal.pdf(3) / (Normal.cdf(3) - Normal.cdf(-3))).squareRoot()

    static func meanAndSD(_ values: [Double]) -> (Double, Double) {
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
        return (mean, variance.squareRoot())
    }

    static func draws(_ parameter: Parameter, count: Int = 20_000, seed: UInt64 = 17) throws -> [Double] {
        let space = SearchSpace([parameter])
        let suggestions = try RandomSuggester(context: SuggesterContext(space: space, seed: seed)).suggest(count: count, history: History())
        #expect(suggestions.allSatisfy { space.contains($0.assignment) })
        return suggestions.compactMap { $0.assignment[parameter.name]?.numericValue }
    }

    @Test func randomDrawsANormalWithKatibsMeanAndDeviationWithinTheBounds() throws {
        let values = try Self.draws(Parameter(name: "m", kind: .double(min: 0.5, max: 0.98, step: nil, scale: .linear), distribution: .normal))
        let mu = 0.74, sigma = 0.08
        let (mean, sd) = Self.meanAndSD(values)
        // Standard errors: σ/√n ≈ 0.00057 for the mean, σ/√(2n) ≈ 0.0004 for the deviation.
        #expect(abs(mean - mu) < 0.003, "mean \(mean)")
        #expect(abs(sd - sigma * Self.truncatedSD) < 0.002, "sd \(sd)")
        #expect(abs(sd - sigma) < 0.03 * sigma)
        #expect(values.allSatisfy { $0 >= 0.5 && $0 <= 0.98 })
        // The shape is normal: about 68% within one σ, 95% within two.
        let oneSigma = Double(values.filter { abs($0 - mu) <= sigma }.count) / Double(values.count)
        let twoSigma = Double(values.filter { abs($0 - mu) <= 2 * sigma }.count) / Double(values.count)
        #expect(abs(oneSigma - 0.6827 / 0.9973) < 0.015 && abs(twoSigma - 0.9545 / 0.9973) < 0.01, "\(oneSigma), \(twoSigma)")
    }

    @Test func randomDrawsALogNormalWhoseLogsAreNormal() throws {
        let values = try Self.draws(Parameter(name: "lr", kind: .double(min: 1e-5, max: 1e-1, step: nil, scale: .log), distribution: .normal))
        #expect(values.allSatisfy { $0 >= 1e-5 && $0 <= 1e-1 })
        let (mean, sd) = Self.meanAndSD(values.map { log($0) })
        let mu = (log(1e-5) + log(1e-1)) / 2, sigma = (log(1e-1) - log(1e-5)) / 6
        #expect(abs(mean - mu) < 0.01 * sigma * 4, "mean of logs \(mean), expected \(mu)")
        #expect(abs(sd - sigma * Self.truncatedSD) < 0.01 * sigma, "sd of logs \(sd), expected \(sigma * Self.truncatedSD)")
    }

    @Test func normalIntsAndStepsAreSnappedToTheirGrid() throws {
        // A continuous companion makes the space infinite, so draws may repeat an int as they should.
        let space = SearchSpace([
            Parameter(name: "units", kind: .int(min: 0, max: 600, step: 10, scale: .linear), distribution: .normal),
            Parameter(name: "z", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
        ])
        let ints = try RandomSuggester(context: SuggesterContext(space: space, seed: 4)).suggest(count: 20_000, history: History())
            .compactMap { $0.assignment["units"]?.numericValue }
        #expect(ints.count == 20_000 && ints.allSatisfy { $0 >= 0 && $0 <= 600 && $0.truncatingRemainder(dividingBy: 10) == 0 })
        let (mean, sd) = Self.meanAndSD(ints)
        // σ = 100; rounding to steps of 10 adds 10²/12 to the variance. Standard errors ≈ 0.7 and 0.5.
        #expect(abs(mean - 300) < 3 && abs(sd - (pow(100 * Self.truncatedSD, 2) + 100.0 / 12).squareRoot()) < 2, "mean \(mean), sd \(sd)")
        let steps = try Self.draws(Parameter(name: "d", kind: .double(min: 0.1, max: 0.5, step: 0.1, scale: .linear), distribution: .normal), count: 5)
        #expect(steps.count == 5 && Set(steps).count == 5, "a finite normal space is used up without repeats: \(steps)")
    }

    @Test func aSmallNormalSpaceIsUsedUpWithoutRepeatsThenExhausted() throws {
        let space = SearchSpace([Parameter(name: "n", kind: .int(min: 1, max: 9, step: 1, scale: .linear), distribution: .normal)])
        let suggester = try RandomSuggester(context: SuggesterContext(space: space, seed: 2))
        var history = History()
        while let next = try? suggester.suggest(count: 2, history: history) {
            history.trials += next.map { .init(assignment: $0.assignment, outcome: .pending) }
        }
        #expect(history.trials.count == 9 && Set(history.trials.map { space.key($0.assignment) }).count == 9)
        // The first draws come from the middle, as a normal's should.
        let firstThree = history.trials.prefix(3).compactMap { $0.assignment["n"]?.numericValue }
        #expect(firstThree.allSatisfy { (3...7).contains($0) }, "\(firstThree)")
    }

    @Test(arguments: ["cmaes", "bayesianoptimization", "gp"])
    func searchersRefuseANormalParameterByName(_ algorithm: String) throws {
        let space = SearchSpace([
            Parameter(name: "m", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
            Parameter(name: "lr", kind: .double(min: 1e-4, max: 1, step: nil, scale: .log), distribution: .normal),
        ])
        let error = #expect(throws: SuggesterError.self) {
            try SuggesterRegistry.make(algorithm, context: SuggesterContext(space: space, seed: 1))
        }
        guard case .unsupportedSpace(let parameter, let message)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(parameter == "lr")
        #expect(message.contains("lr") && message.contains("logNormal") && message.contains("logUniform") && message.contains("random"), "\(message)")
    }

    @Test func gridListsTheValuesWhateverTheDistribution() throws {
        let space = SearchSpace([Parameter(name: "n", kind: .int(min: 1, max: 3, step: 1, scale: .linear), distribution: .normal)])
        let grid = try GridSuggester(context: SuggesterContext(space: space, seed: 0))
        #expect(try grid.suggest(count: 5, history: History()).compactMap { $0.assignment["n"] } == [.int(1), .int(2), .int(3)])
    }

    @Test func aParameterStoredBeforeDistributionsDecodesAsUniform() throws {
        let stored = #"{"name":"lr","kind":{"double":{"min":0.001,"max":0.1,"scale":"log"}}}"#
        let parameter = try JSONDecoder().decode(Parameter.self, from: Data(stored.utf8))
        #expect(parameter == Parameter(name: "lr", kind: .double(min: 0.001, max: 0.1, step: nil, scale: .log)))
        #expect(parameter.distribution == .uniform && parameter.katibDistribution == "logUniform")
        let normal = Parameter(name: "lr", kind: .double(min: 0.001, max: 0.1, step: nil, scale: .log), distribution: .normal)
        #expect(try JSONDecoder().decode(Parameter.self, from: JSONEncoder().encode(normal)) == normal)
        #expect(normal.katibDistribution == "logNormal")
    }
}

@Suite struct TPEDistributionTests {
    @Test func thePriorOfANormalParameterIsKatibsNormal() throws {
        let normal = try #require(NumericDomain(Parameter(name: "m", kind: .double(min: 0.5, max: 0.98, step: nil, scale: .linear), distribution: .normal)))
        #expect(abs(normal.prior.mu - 0.74) < 1e-12 && abs(normal.prior.sigma - 0.08) < 1e-12)
        let logNormal = try #require(NumericDomain(Parameter(name: "lr", kind: .double(min: 1e-5, max: 1e-1, step: nil, scale: .log), distribution: .normal)))
        #expect(abs(logNormal.prior.mu - log(1e-3)) < 1e-12 && abs(logNormal.prior.sigma - (log(1e-1) - log(1e-5)) / 6) < 1e-12)
        // A uniform parameter keeps the wide prior of Optuna's TPE.
        let uniform = try #require(NumericDomain(Parameter(name: "m", kind: .double(min: 0.5, max: 0.98, step: nil, scale: .linear))))
        #expect(abs(uniform.prior.mu - 0.74) < 1e-12 && abs(uniform.prior.sigma - 0.48) < 1e-12)
    }

    /// TPE's candidates are drawn from the good group's model, the prior included: with no good
    /// trial yet that is the prior alone, which for a normal parameter draws Katib's normal.
    @Test func candidatesWithoutObservationsFollowTheNormal() throws {
        let domain = try #require(NumericDomain(Parameter(name: "x", kind: .double(min: 0, max: 6, step: nil, scale: .linear), distribution: .normal)))
        let mixture = TruncatedGaussianMixture(observations: [], observationWeights: [], priorWeight: 1, lo: domain.lo, hi: domain.hi, prior: domain.prior)
        var rng = SeededGenerator(seed: 5, stream: 0)
        let draws = (0..<20_000).map { _ in mixture.sample(&rng) }
        let (mean, sd) = DistributionTests.meanAndSD(draws)
        #expect(abs(mean - 3) < 0.03 && abs(sd - DistributionTests.truncatedSD) < 0.03, "mean \(mean), sd \(sd)")
        // Optuna's wide prior on the same range is nearly flat: its deviation is close to a uniform's, 6/√12 ≈ 1.73.
        let wide = TruncatedGaussianMixture(observations: [], observationWeights: [], priorWeight: 1, lo: 0, hi: 6)
        let (_, wideSD) = DistributionTests.meanAndSD((0..<20_000).map { _ in wide.sample(&rng) })
        #expect(wideSD > 1.5, "\(wideSD)")
    }

    /// A TPE experiment over a normal parameter runs past its random start.
    @Test(arguments: ["tpe", "multivariate-tpe"])
    func tpeSuggestsWithinTheRangeOfANormalParameter(_ algorithm: String) throws {
        let space = SearchSpace([Parameter(name: "x", kind: .double(min: 0, max: 6, step: nil, scale: .linear), distribution: .normal),
                                 Parameter(name: "n", kind: .int(min: 1, max: 9, step: 1, scale: .linear), distribution: .normal)])
        let suggester = try SuggesterRegistry.make(algorithm, context: SuggesterContext(space: space, settings: ["n_startup_trials": "3"], seed: 3))
        var history = History()
        for _ in 0..<12 {
            let s = try suggester.suggest(count: 1, history: history)[0]
            let x = s.assignment["x"]?.numericValue ?? .nan
            history.trials.append(.init(assignment: s.assignment, outcome: .completed((x - 2) * (x - 2))))
        }
        #expect(history.trials.allSatisfy { space.contains($0.assignment) })
    }
}
