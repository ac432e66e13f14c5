// Notation: X (n×d, rows in the unit cube), y (n, standardized); Matérn-5/2 ARD kernel
//   k(x, x') = s·(1 + √5 r + 5r²/3)·exp(−√5 r),  r² = Σ_j (x_j − x'_j)²/ℓ_j²,
// K = k(X, X) + σ²·I = L·Lᵀ, α = K⁻¹y. Hyperparameters θ = (log ℓ_1..d, log s, log σ²) maximize the
// log marginal likelihood plus log priors. Predictions are of the latent f (σ² excluded).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Kernel hyperparameters.
struct GPHyperparameters: Sendable, Hashable {
    var lengthscales: [Double]
    var scale: Double
    var noise: Double

    var logVector: [Double] { lengthscales.map(log) + [log(scale), log(noise)] }

    init(lengthscales: [Double], scale: Double, noise: Double) {
        self.lengthscales = lengthscales
        self.scale = scale
        self.noise = noise
    }

    init(logVector v: [Double]) {
        lengthscales = v.dropLast(2).map(exp)
        scale = exp(v[v.count - 2])
        noise = exp(v[v.count - 1])
    }

    /// Box for the log-parameters.
    static func bounds(dimension d: Int) -> (lower: [Double], upper: [Double]) {
        (Array(repeating: log(0.005), count: d) + [log(0.05), log(1e-8)],
         Array(repeating: log(20.0), count: d) + [log(20.0), log(0.5)])
    }

    /// Log prior: lengthscales log-normal around 0.5, scale around 1, noise small.
    func logPrior() -> (value: Double, gradient: [Double]) {
        var value = 0.0
        var gradient: [Double] = []
        for l in lengthscales {
            let z = (log(l) - log(0.5)) / 1.0
            value -= 0.5 * z * z
            gradient.append(-z)
        }
        let zs = log(scale) / 1.0
        value -= 0.5 * zs * zs
        gradient.append(-zs)
        let zn = (log(noise) - log(1e-6)) / 2.0
        value -= 0.5 * zn * zn
        gradient.append(-zn / 2.0)
        return (value, gradient)
    }
}

/// Matérn-5/2 kernel pieces.
enum Matern52 {
    static let sqrt5 = 5.0.squareRoot()

    /// k(r)/s.
    @inlinable static func value(_ r: Double) -> Double {
        (1 + sqrt5 * r + 5 * r * r / 3) * exp(-sqrt5 * r)
    }

    /// −(dk/dr)/(s·r): the factor that multiplies (Δ_j/ℓ_j²) in ∂k/∂x_j, and (Δ_j²/ℓ_j²) in ∂k/∂log ℓ_j.
    @inlinable static func radialFactor(_ r: Double) -> Double {
        (5.0 / 3.0) * (1 + sqrt5 * r) * exp(-sqrt5 * r)
    }

    static func distance(_ a: [Double], _ b: [Double], _ lengthscales: [Double]) -> Double {
        var r2 = 0.0
        for j in 0..<a.count {
            let q = (a[j] - b[j]) / lengthscales[j]
            r2 += q * q
        }
        return r2.squareRoot()
    }
}

/// A fitted Gaussian process over the unit cube.
struct GaussianProcess: Sendable {
    let X: [[Double]]
    let y: [Double]
    let hyper: GPHyperparameters
    let cholesky: Cholesky
    let alpha: [Double]

    init?(X: [[Double]], y: [Double], hyper: GPHyperparameters) {
        let n = X.count
        var K = [Double](repeating: 0, count: n * n)
        for a in 0..<n {
            for b in 0...a {
                let k = hyper.scale * Matern52.value(Matern52.distance(X[a], X[b], hyper.lengthscales))
                K[a * n + b] = k
                K[b * n + a] = k
            }
            K[a * n + a] += hyper.noise
        }
        guard let cholesky = Cholesky(K, n: n) else { return nil }
        self.X = X
        self.y = y
        self.hyper = hyper
        self.cholesky = cholesky
        alpha = cholesky.solve(y)
    }

    private init(X: [[Double]], y: [Double], hyper: GPHyperparameters, cholesky: Cholesky) {
        self.X = X
        self.y = y
        self.hyper = hyper
        self.cholesky = cholesky
        alpha = cholesky.solve(y)
    }

    /// The kernel vector k(x, X).
    func kernelVector(_ x: [Double]) -> [Double] {
        X.map { hyper.scale * Matern52.value(Matern52.distance(x, $0, hyper.lengthscales)) }
    }

    /// Posterior mean and variance of f at x, with their gradients when asked.
    func predict(_ x: [Double], gradient: Bool = false) -> (mean: Double, variance: Double, dMean: [Double], dVariance: [Double]) {
        let d = x.count
        let k = kernelVector(x)
        var mean = 0.0
        for i in 0..<k.count { mean += k[i] * alpha[i] }
        let v = cholesky.solveLower(k)
        let variance = max(1e-12 * hyper.scale, hyper.scale - v.map { $0 * $0 }.reduce(0, +))
        guard gradient else { return (mean, variance, [], []) }
        let w = cholesky.solveUpper(v)  // K⁻¹k
        var dMean = [Double](repeating: 0, count: d)
        var dVariance = [Double](repeating: 0, count: d)
        for i in 0..<X.count {
            let r = Matern52.distance(x, X[i], hyper.lengthscales)
            let factor = -hyper.scale * Matern52.radialFactor(r)
            for j in 0..<d {
                let dk = factor * (x[j] - X[i][j]) / (hyper.lengthscales[j] * hyper.lengthscales[j])
                dMean[j] += dk * alpha[i]
                dVariance[j] -= 2 * dk * w[i]
            }
        }
        return (mean, variance, dMean, dVariance)
    }

    /// The same process with one more observation (kriging believer: the value it predicts there),
    /// by extending the Cholesky factor; the hyperparameters stay.
    func conditioned(on x: [Double], value: Double) -> GaussianProcess {
        let grown = cholesky.extended(with: kernelVector(x), diagonal: hyper.scale + hyper.noise + cholesky.jitter)
        return GaussianProcess(X: X + [x], y: y + [value], hyper: hyper, cholesky: grown)
    }

    // MARK: Fitting

    /// Negative log posterior of the hyperparameters and its gradient in log-space.
    static func negativeLogPosterior(X: [[Double]], y: [Double], logVector: [Double]) -> (value: Double, gradient: [Double]) {
        FitProblem(X: X, y: y).evaluate(logVector)
    }

    /// Fits the hyperparameters (a few starts, the best kept) and returns the process.
    static func fit(X: [[Double]], y: [Double], starts: [GPHyperparameters]) -> GaussianProcess? {
        let d = X.first?.count ?? 0
        let (lower, upper) = GPHyperparameters.bounds(dimension: d)
        var best: (value: Double, x: [Double])?
        let problem = FitProblem(X: X, y: y)
        for start in starts {
            let result = LBFGS.minimize(start.logVector, lower: lower, upper: upper, maxIterations: 60) { v in
                problem.evaluate(v)
            }
            if result.value.isFinite, best == nil || result.value < best!.value { best = (result.value, result.x) }
        }
        let hyper = best.map { GPHyperparameters(logVector: $0.x) } ?? starts[0]
        return GaussianProcess(X: X, y: y, hyper: hyper)
    }
}

/// The hyperparameter fit's objective, with the pairwise squared differences computed once.
struct FitProblem {
    let n: Int
    let d: Int
    let y: [Double]
    /// (x_a,j − x_b,j)² for a > b, row-major over pairs then dimensions.
    let squaredDifferences: [Double]

    init(X: [[Double]], y: [Double]) {
        n = X.count
        d = X.first?.count ?? 0
        self.y = y
        var differences = [Double](repeating: 0, count: n * (n - 1) / 2 * d)
        var p = 0
        for a in 0..<n {
            for b in 0..<a {
                for j in 0..<d {
                    let delta = X[a][j] - X[b][j]
                    differences[p * d + j] = delta * delta
                }
                p += 1
            }
        }
        squaredDifferences = differences
    }

    func evaluate(_ logVector: [Double]) -> (value: Double, gradient: [Double]) {
        let hyper = GPHyperparameters(logVector: logVector)
        let inverseSquaredLengthscales = hyper.lengthscales.map { 1 / ($0 * $0) }
        let pairs = n * (n - 1) / 2
        var distances = [Double](repeating: 0, count: pairs)
        var K = [Double](repeating: 0, count: n * n)
        var p = 0
        for a in 0..<n {
            for b in 0..<a {
                var r2 = 0.0
                for j in 0..<d { r2 += squaredDifferences[p * d + j] * inverseSquaredLengthscales[j] }
                let r = r2.squareRoot()
                distances[p] = r
                let k = hyper.scale * Matern52.value(r)
                K[a * n + b] = k
                K[b * n + a] = k
                p += 1
            }
            K[a * n + a] = hyper.scale + hyper.noise
        }
        guard let cholesky = Cholesky(K, n: n) else { return (.infinity, Array(repeating: 0, count: d + 2)) }
        let alpha = cholesky.solve(y)
        let logLikelihood = -0.5 * zip(y, alpha).map { $0 * $1 }.reduce(0, +) - 0.5 * cholesky.logDeterminant
            - 0.5 * Double(n) * log(2 * Double.pi)
        // W = ααᵀ − K⁻¹; ∂LML/∂θ = ½ tr(W ∂K/∂θ) (W is symmetric: off-diagonal pairs count twice).
        let inverse = cholesky.inverse()
        var gradient = [Double](repeating: 0, count: d + 2)
        p = 0
        for a in 0..<n {
            let waa = alpha[a] * alpha[a] - inverse[a * n + a]
            gradient[d] += 0.5 * waa * hyper.scale
            gradient[d + 1] += 0.5 * waa * hyper.noise
            for b in 0..<a {
                let w = alpha[a] * alpha[b] - inverse[a * n + b]
                let r = distances[p]
                gradient[d] += w * K[a * n + b]
                let factor = w * hyper.scale * Matern52.radialFactor(r)
                for j in 0..<d { gradient[j] += factor * squaredDifferences[p * d + j] * inverseSquaredLengthscales[j] }
                p += 1
            }
        }
        let prior = hyper.logPrior()
        return (-(logLikelihood + prior.value), (0..<(d + 2)).map { -(gradient[$0] + prior.gradient[$0]) })
    }
}
