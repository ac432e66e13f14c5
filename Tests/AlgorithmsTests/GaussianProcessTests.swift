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
        for (name, value) in [("base_estimator", "RF"), ("acq_func", "pi"), ("n_initial_points", "0"), ("kappa", "-1")] {
            var settings = [name: value]
            if name == "kappa" { settings["acq_func"] = "ucb" }
            #expect(throws: SuggesterError.self, "\(name)=\(value)") {
                try GPSuggester(context: SuggesterContext(space: space, settings: settings, seed: 1))
            }
        }
        #expect(throws: Never.self) {
            try GPSuggester(context: SuggesterContext(space: space, settings: ["base_estimator": "GP", "acq_func": "ucb", "kappa": "2"], seed: 1))
        }
    }
}
