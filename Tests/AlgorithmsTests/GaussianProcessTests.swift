import Foundation
import Testing
@testable import KnobAlgorithms

@Suite struct GaussianProcessTests {
    static func data(n: Int, d: Int, seed: UInt64 = 1) -> ([[Double]], [Double]) {
        var rng = SeededGenerator(seed: seed)
        let X = (0..<n).map { _ in (0..<d).map { _ in rng.unit() } }
        let y = X.map { x in sin(6 * x[0]) + x.dropFirst().map { ($0 - 0.4) * ($0 - 0.4) }.reduce(0, +) }
        return (X, y)
    }

    @Test func theKernelMatrixIsSymmetricPositiveSemidefinite() {
        let (X, _) = Self.data(n: 30, d: 3)
        let hyper = GPHyperparameters(lengthscales: [0.3, 0.5, 1.2], scale: 1.7, noise: 0)
        var K = [Double](repeating: 0, count: 900)
        for a in 0..<30 { for b in 0..<30 { K[a * 30 + b] = hyper.scale * Matern52.value(Matern52.distance(X[a], X[b], hyper.lengthscales)) } }
        for a in 0..<30 { for b in 0..<30 { #expect(K[a * 30 + b] == K[b * 30 + a]) } }
        let eigen = SymmetricEigen(K, n: 30)
        #expect(eigen.values.allSatisfy { $0 > -1e-10 }, "smallest eigenvalue \(eigen.values.min()!)")
    }

    @Test func theLikelihoodGradientMatchesFiniteDifferences() {
        let (X, y) = Self.data(n: 15, d: 2)
        let v = GPHyperparameters(lengthscales: [0.4, 0.9], scale: 1.3, noise: 0.01).logVector
        let analytic = GaussianProcess.negativeLogPosterior(X: X, y: y, logVector: v).gradient
        for i in 0..<v.count {
            var plus = v, minus = v
            plus[i] += 1e-5
            minus[i] -= 1e-5
            let numeric = (GaussianProcess.negativeLogPosterior(X: X, y: y, logVector: plus).value
                - GaussianProcess.negativeLogPosterior(X: X, y: y, logVector: minus).value) / 2e-5
            #expect(abs(numeric - analytic[i]) < 1e-4 * max(1, abs(numeric)), "θ[\(i)]: analytic \(analytic[i]), numeric \(numeric)")
        }
    }

    @Test func predictionGradientsMatchFiniteDifferences() throws {
        let (X, y) = Self.data(n: 12, d: 3)
        let gp = try #require(GaussianProcess(X: X, y: y, hyper: GPHyperparameters(lengthscales: [0.3, 0.6, 0.8], scale: 1, noise: 1e-4)))
        let x = [0.37, 0.52, 0.11]
        let p = gp.predict(x, gradient: true)
        for j in 0..<3 {
            var plus = x, minus = x
            plus[j] += 1e-6
            minus[j] -= 1e-6
            let dm = (gp.predict(plus).mean - gp.predict(minus).mean) / 2e-6
            let dv = (gp.predict(plus).variance - gp.predict(minus).variance) / 2e-6
            #expect(abs(dm - p.dMean[j]) < 1e-5 * max(1, abs(dm)))
            #expect(abs(dv - p.dVariance[j]) < 1e-5 * max(1, abs(dv)))
        }
    }

    @Test func theProcessInterpolatesNoiselessData() throws {
        let (X, y) = Self.data(n: 20, d: 2)
        let gp = try #require(GaussianProcess.fit(X: X, y: y, starts: [GPHyperparameters(lengthscales: [0.5, 0.5], scale: 1, noise: 1e-4)]))
        for (x, value) in zip(X, y) {
            let p = gp.predict(x)
            #expect(abs(p.mean - value) < 0.01, "at a training point: \(p.mean) vs \(value)")
            #expect(p.variance < 1e-3)
        }
    }

    @Test func logEIMatchesEIWhereRepresentableAndStaysFiniteBeyond() {
        for z in stride(from: -30.0, through: 5.0, by: 0.25) {
            let direct = Normal.pdf(z) + z * Normal.cdf(z)
            if direct > 1e-250 {
                #expect(abs(LogEI.logH(z) - log(direct)) < 1e-6 * max(1, abs(log(direct))), "z = \(z)")
            }
        }
        // Where EI underflows to 0, log-EI still has a value, close to the tail's asymptote −z²/2 − log(√(2π)) − 2 log|z|.
        for z in [-40.0, -100.0, -1e4] {
            #expect(Normal.pdf(z) + z * Normal.cdf(z) == 0 || z > -39)
            let value = LogEI.logH(z)
            #expect(value.isFinite)
            #expect(abs(value - (-z * z / 2 - 0.5 * log(2 * Double.pi) - 2 * log(-z))) < 1e-2)
        }
        // The derivatives with respect to μ and σ match finite differences.
        let e = LogEI.value(mean: 0.3, sigma: 0.2, best: -0.5)
        let dm = (LogEI.value(mean: 0.3 + 1e-7, sigma: 0.2, best: -0.5).value - LogEI.value(mean: 0.3 - 1e-7, sigma: 0.2, best: -0.5).value) / 2e-7
        let ds = (LogEI.value(mean: 0.3, sigma: 0.2 + 1e-7, best: -0.5).value - LogEI.value(mean: 0.3, sigma: 0.2 - 1e-7, best: -0.5).value) / 2e-7
        #expect(abs(dm - e.dMean) < 1e-4 * abs(dm) && abs(ds - e.dSigma) < 1e-4 * abs(ds))
    }

    @Test func aPendingPointLowersTheAcquisitionNearItself() throws {
        let (X, y) = Self.data(n: 10, d: 2)
        let gp = try #require(GaussianProcess(X: X, y: y, hyper: GPHyperparameters(lengthscales: [0.3, 0.3], scale: 1, noise: 1e-4)))
        let best = y.min()!
        let pending = [0.71, 0.23]
        func acquisition(_ model: GaussianProcess, _ x: [Double]) -> Double {
            let p = model.predict(x)
            return LogEI.value(mean: p.mean, sigma: p.variance.squareRoot(), best: best).value
        }
        let fantasized = gp.conditioned(on: pending, value: gp.predict(pending).mean)
        for x in [pending, [0.72, 0.24], [0.69, 0.22]] {
            #expect(acquisition(fantasized, x) < acquisition(gp, x) - 0.5, "at \(x)")
        }
        // Far away it barely changes.
        #expect(abs(acquisition(fantasized, [0.05, 0.95]) - acquisition(gp, [0.05, 0.95])) < 0.05)
    }

    @Test func choleskyExtensionEqualsTheFullFactorization() throws {
        let (X, _) = Self.data(n: 8, d: 2)
        let hyper = GPHyperparameters(lengthscales: [0.4, 0.4], scale: 1, noise: 1e-3)
        let small = try #require(GaussianProcess(X: Array(X.prefix(7)), y: Array(repeating: 0, count: 7), hyper: hyper))
        let full = try #require(GaussianProcess(X: X, y: Array(repeating: 0, count: 8), hyper: hyper))
        let extended = small.conditioned(on: X[7], value: 0)
        for (a, b) in zip(extended.cholesky.L, full.cholesky.L) { #expect(abs(a - b) < 1e-10) }
    }

    @Test func settingsAreChecked() {
        let space = SearchSpace([Parameter(name: "x", kind: .double(min: 0, max: 1, step: nil, scale: .linear))])
        for (name, value) in [("base_estimator", "RF"), ("acq_func", "pi"), ("n_initial_points", "0"), ("kappa", "-1"), ("max_fit_trials", "5"), ("max_fit_trials", "many"), ("output_warping", "box-cox")] {
            var settings = [name: value]
            if name == "kappa" { settings["acq_func"] = "ucb" }
            #expect(throws: SuggesterError.self, "\(name)=\(value)") {
                try GPSuggester(context: SuggesterContext(space: space, settings: settings, seed: 1))
            }
        }
        #expect(throws: Never.self) {
            try GPSuggester(context: SuggesterContext(space: space, settings: ["base_estimator": "GP", "acq_func": "ucb", "kappa": "2"], seed: 1))
        }
        #expect(throws: Never.self) {
            try GPSuggester(context: SuggesterContext(space: space, settings: ["output_warping": "Standardize"], seed: 1))
        }
    }

    @Test func aBadSettingIsNamedInTheError() {
        let space = SearchSpace([Parameter(name: "x", kind: .double(min: 0, max: 1, step: nil, scale: .linear))])
        do {
            _ = try GPSuggester(context: SuggesterContext(space: space, settings: ["max_fit_trials": "7"], seed: 1))
            Issue.record("max_fit_trials=7 was accepted")
        } catch {
            #expect("\(error)".contains("max_fit_trials") && "\(error)".contains("7"), "\(error)")
        }
    }

    @Test func categoricalChoicesAreAllOneUnitApart() throws {
        // One categorical coordinate with four choices (encoded at their cells' centres) and one numeric.
        let centres = (0..<4).map { (Double($0) + 0.5) / 4 }
        let X = [[centres[0], 0.5]]
        let hyper = GPHyperparameters(lengthscales: [0.7, 0.3], scale: 1.5, noise: 1e-6)
        let gp = try #require(GaussianProcess(X: X, y: [1], hyper: hyper, categorical: [true, false]))
        let neighbour = gp.kernelVector([centres[1], 0.5])[0]
        let far = gp.kernelVector([centres[3], 0.5])[0]
        // The first and last choices are as alike as the first and second: no order among labels.
        #expect(abs(neighbour - far) < 1e-12, "\(neighbour) vs \(far)")
        #expect(abs(neighbour - 1.5 * Matern52.value(1 / 0.7)) < 1e-12)
        #expect(abs(gp.kernelVector([centres[0], 0.5])[0] - 1.5) < 1e-12)
        // A numeric coordinate keeps its ordinary distance.
        let ordinal = try #require(GaussianProcess(X: X, y: [1], hyper: hyper, categorical: [false, false]))
        #expect(ordinal.kernelVector([centres[3], 0.5])[0] < ordinal.kernelVector([centres[1], 0.5])[0] - 0.1)
        // The likelihood gradient still matches finite differences with a categorical coordinate.
        let (points, values) = Self.data(n: 12, d: 2)
        let mixed = points.map { [centres[Int($0[0] * 4)], $0[1]] }
        let v = hyper.logVector
        let analytic = GaussianProcess.negativeLogPosterior(X: mixed, y: values, logVector: v, categorical: [true, false]).gradient
        for i in 0..<v.count {
            var plus = v, minus = v
            plus[i] += 1e-5
            minus[i] -= 1e-5
            let numeric = (GaussianProcess.negativeLogPosterior(X: mixed, y: values, logVector: plus, categorical: [true, false]).value
                - GaussianProcess.negativeLogPosterior(X: mixed, y: values, logVector: minus, categorical: [true, false]).value) / 2e-5
            #expect(abs(numeric - analytic[i]) < 1e-4 * max(1, abs(numeric)), "θ[\(i)]: analytic \(analytic[i]), numeric \(numeric)")
        }
    }

    @Test func intsAndStepsArePaddedByHalfAStepInTheModelsGrid() throws {
        let space = SearchSpace([
            Parameter(name: "n", kind: .int(min: 1, max: 4, step: 1, scale: .linear)),
            Parameter(name: "s", kind: .double(min: 0, max: 1, step: 0.5, scale: .linear)),
            Parameter(name: "c", kind: .categorical(["a", "b"])),
            Parameter(name: "x", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
        ])
        let suggester = try GPSuggester(context: SuggesterContext(space: space, seed: 3))
        let grids = suggester.grids
        for (grid, expected) in zip(grids.prefix(3), [[0.125, 0.375, 0.625, 0.875], [1.0 / 6, 0.5, 5.0 / 6], [0.25, 0.75]]) {
            let values = try #require(grid)
            #expect(values.count == expected.count)
            for (a, b) in zip(values, expected) { #expect(abs(a - b) < 1e-12, "\(values) vs \(expected)") }
        }
        #expect(grids[3] == nil)
        #expect(suggester.categorical == [false, false, true, false])
    }

    @Test func smallDiscreteCoordinatesAreSearchedExhaustively() {
        // a(x) = −(x₀ − 0.3)² + bonus of x₁'s value (five values, best the middle one) + bonus of the
        // categorical x₂ (three labels, best the last). Every candidate sits at x₁'s first value and x₂'s
        // first label, where the gradient says nothing: only enumeration finds the best values.
        let grid1 = [0.1, 0.3, 0.5, 0.7, 0.9], grid2 = [1.0 / 6, 0.5, 5.0 / 6]
        let bonus1 = [0.0, 0.2, 1.0, 0.2, 0.0], bonus2 = [0.0, 0.1, 0.5]
        func index(_ grid: [Double], _ v: Double) -> Int { grid.indices.min { abs(grid[$0] - v) < abs(grid[$1] - v) }! }
        func a(_ x: [Double]) -> Double { -(x[0] - 0.3) * (x[0] - 0.3) + bonus1[index(grid1, x[1])] + bonus2[index(grid2, x[2])] }
        let optimizer = AcquisitionOptimizer(dimension: 3, grids: [nil, grid1, grid2], categorical: [false, false, true], scales: [0.5, 0.5, 0.5])
        var rng = SeededGenerator(seed: 5)
        let candidates = (0..<32).map { i in [Double(i) / 31, grid1[0], grid2[0]] }
        let found = optimizer.maximize(
            candidates: candidates, starts: [], localSearches: 3, rng: &rng,
            values: { points, m in (0..<m).map { a(Array(points[($0 * 3)..<($0 * 3 + 3)])) } },
            valueAndGradient: { x in (a(x), [-2 * (x[0] - 0.3), 0, 0]) })
        let best = found[0].x
        #expect(abs(best[0] - 0.3) < 1e-3, "\(best)")
        #expect(best[1] == grid1[2] && best[2] == grid2[2], "\(best)")
    }

    @Test func whereItHasNoDataTheModelExpectsTheWorstValueSeen() throws {
        // Trials in one corner of the cube; far from them the prediction reverts to the prior mean.
        let (X, y) = Self.data(n: 16, d: 2)
        let corner = X.map { $0.map { 0.3 * $0 } }
        let targets = GPSuggester.measuredFromWorst(OutputWarping(y, kind: .yeoJohnson).values)
        #expect(targets.max() == 0)
        #expect(targets.indices.sorted { targets[$0] < targets[$1] } == y.indices.sorted { y[$0] < y[$1] }, "the order is kept")
        let gp = try #require(GaussianProcess.fit(X: corner, y: targets, starts: [GPHyperparameters(lengthscales: [0.2, 0.2], scale: 1, noise: 1e-4)]))
        let far = gp.predict([1, 1]).mean
        #expect(abs(far) < 0.05, "far from the data the model expects \(far), not the worst value 0")
        let average = targets.reduce(0, +) / Double(targets.count)
        #expect(average < -0.5, "the worst and the average are apart: \(average)")
        // A suggestion after those trials stays near the best of them instead of trying the far corner.
        let space = SearchSpace([Parameter(name: "a", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
                                 Parameter(name: "b", kind: .double(min: 0, max: 1, step: nil, scale: .linear))])
        let suggester = try GPSuggester(context: SuggesterContext(space: space, settings: ["n_candidates": "256"], seed: 4))
        var history = History()
        for (x, value) in zip(corner, y) {
            history.trials.append(.init(assignment: space.decode(x), outcome: .completed(value)))
        }
        let next = try #require(suggester.suggest(count: 1, history: history).first)
        let point = space.encode(next.assignment)
        #expect(point.allSatisfy { $0 < 0.5 }, "the suggestion \(point) left the region of the trials")
    }

    @Test func pastMaxFitTrialsTheModelKeepsTheBestPoints() throws {
        var rng = SeededGenerator(seed: 1)
        let rows = (0..<100).map { i in (i, Double((i * 37) % 100)) }
        let subset = GPSuggester.subset(of: rows, limit: 20, rng: &rng)
        #expect(subset.count == 20)
        let values = Set(subset.map(\.1))
        for best in 0..<10 { #expect(values.contains(Double(best)), "value \(best) was left out") }
        #expect(subset.map(\.0) == subset.map(\.0).sorted(), "the rows keep their order")
        #expect(GPSuggester.subset(of: rows, limit: 100, rng: &rng).count == 100)
        // A suggester past its limit still proposes valid points.
        let space = SearchSpace([Parameter(name: "x", kind: .double(min: -2, max: 2, step: nil, scale: .linear)),
                                 Parameter(name: "k", kind: .int(min: 0, max: 3, step: 1, scale: .linear))])
        let suggester = try GPSuggester(context: SuggesterContext(space: space, settings: ["max_fit_trials": "20", "n_candidates": "64"], seed: 2))
        var history = History()
        for i in 0..<40 {
            let assignment = space.decode([Double(i) / 40, Double(i % 4) / 4 + 0.1])
            let x = assignment["x"]!.numericValue!
            history.trials.append(.init(assignment: assignment, outcome: .completed(x * x)))
        }
        let next = try suggester.suggest(count: 2, history: history)
        #expect(next.count == 2 && next.allSatisfy { space.contains($0.assignment) })
        #expect(next[0].assignment != next[1].assignment)
    }

    @Test func hyperparametersAreRefittedOnlyEveryFewTrialsOnceThereAreMany() throws {
        #expect(GPSuggester.refitInterval(completed: 12) == 1)
        #expect(GPSuggester.refitInterval(completed: 100) > 1)
        let space = SearchSpace([Parameter(name: "x", kind: .double(min: -2, max: 2, step: nil, scale: .linear)),
                                 Parameter(name: "y", kind: .double(min: -2, max: 2, step: nil, scale: .linear))])
        let suggester = try GPSuggester(context: SuggesterContext(space: space, settings: ["n_candidates": "64"], seed: 3))
        var history = History()
        for i in 0..<80 {
            let assignment = space.decode([Double((i * 29) % 80) / 80, Double((i * 53) % 80) / 80])
            let x = assignment["x"]!.numericValue!, y = assignment["y"]!.numericValue!
            history.trials.append(.init(assignment: assignment, outcome: .completed(x * x + 2 * y * y)))
        }
        let key = GPSuggester.hyperparametersKey, fittedOn = GPSuggester.fittedOnKey
        let first = try #require(suggester.suggest(count: 1, history: history).first)
        #expect(first.metadata[fittedOn] == "80")
        func complete(_ suggestion: Suggestion) {
            let x = suggestion.assignment["x"]!.numericValue!, y = suggestion.assignment["y"]!.numericValue!
            history.trials.append(.init(assignment: suggestion.assignment, outcome: .completed(x * x + 2 * y * y), metadata: suggestion.metadata))
        }
        complete(first)
        // One trial later the same hyperparameters are kept; after the interval they are fitted again.
        let second = try #require(suggester.suggest(count: 1, history: history).first)
        #expect(second.metadata[fittedOn] == "80" && second.metadata[key] == first.metadata[key])
        complete(second)
        while history.completed.count < 80 + GPSuggester.refitInterval(completed: 80) {
            complete(try #require(suggester.suggest(count: 1, history: history).first))
        }
        let refitted = try #require(suggester.suggest(count: 1, history: history).first)
        #expect(refitted.metadata[fittedOn] == "\(history.completed.count)")
    }
}
