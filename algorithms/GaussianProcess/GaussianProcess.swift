// Notation: X (n×d, rows in the unit cube, row-major), y (n, standardized); Matérn-5/2 ARD kernel
//   k(x, x') = s·(1 + √5 r + 5r²/3)·exp(−√5 r),  r² = Σ_j δ_j(x, x')²/ℓ_j²,
// where δ_j = x_j − x'_j for a numeric coordinate and δ_j = [x_j ≠ x'_j] for a categorical one (its own
// distance: two different choices are one unit apart, whatever their order in the list).
// K = k(X, X) + σ²·I = L·Lᵀ, α = K⁻¹y. Hyperparameters θ = (log ℓ_1..d, log s, log σ²) maximize the
// log marginal likelihood plus log priors. Predictions are of the latent f (σ² excluded).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Matérn-5/2 kernel pieces.
enum Matern52 {
    static let sqrt5 = 5.0.squareRoot()

    /// k(r)/s.
    @inline(__always) static func value(_ r: Double) -> Double {
        (1 + sqrt5 * r + 5 * r * r / 3) * expNegative(-sqrt5 * r)
    }

    /// −(dk/dr)/(s·r): the factor that multiplies (Δ_j/ℓ_j²) in ∂k/∂x_j, and (Δ_j²/ℓ_j²) in ∂k/∂log ℓ_j.
    @inline(__always) static func radialFactor(_ r: Double) -> Double {
        (5.0 / 3.0) * (1 + sqrt5 * r) * expNegative(-sqrt5 * r)
    }

    static func distance(_ a: [Double], _ b: [Double], _ lengthscales: [Double]) -> Double {
        var r2 = 0.0
        for j in 0..<a.count {
            let q = (a[j] - b[j]) / lengthscales[j]
            r2 += q * q
        }
        return r2.squareRoot()
    }

    /// δ_j² for one coordinate: squared difference, or 0/1 for a categorical coordinate.
    @inline(__always) static func squaredDifference(_ a: Double, _ b: Double, categorical: Bool) -> Double {
        if categorical { return abs(a - b) > 1e-9 ? 1 : 0 }
        return (a - b) * (a - b)
    }
}

/// A fitted Gaussian process over the unit cube.
struct GaussianProcess: Sendable {
    let n: Int
    let d: Int
    /// Training inputs, n×d row-major.
    let inputs: [Double]
    let y: [Double]
    let hyper: GPHyperparameters
    /// Which coordinates are categorical (their own 0/1 distance).
    let categorical: [Bool]
    let inverseSquaredLengthscales: [Double]
    let cholesky: Cholesky
    let alpha: [Double]

    /// Training inputs as rows.
    var X: [[Double]] { (0..<n).map { Array(inputs[($0 * d)..<($0 * d + d)]) } }

    init?(X: [[Double]], y: [Double], hyper: GPHyperparameters, categorical: [Bool]? = nil) {
        let d = hyper.lengthscales.count
        self.init(inputs: X.flatMap { $0 }, n: X.count, y: y, hyper: hyper, categorical: categorical ?? Array(repeating: false, count: d))
    }

    init?(inputs: [Double], n: Int, y: [Double], hyper: GPHyperparameters, categorical: [Bool]) {
        let d = hyper.lengthscales.count
        precondition(inputs.count == n * d && y.count == n && categorical.count == d)
        self.n = n
        self.d = d
        self.inputs = inputs
        self.y = y
        self.hyper = hyper
        self.categorical = categorical
        inverseSquaredLengthscales = hyper.lengthscales.map { 1 / ($0 * $0) }
        var K = [Double](repeating: 0, count: n * n)
        for a in 0..<n {
            for b in 0..<a {
                let k = hyper.scale * Matern52.value(Self.squaredDistance(inputs, a, inputs, b, d: d, inverseSquaredLengthscales, categorical).squareRoot())
                K[a * n + b] = k
                K[b * n + a] = k
            }
            K[a * n + a] = hyper.scale + hyper.noise
        }
        guard let cholesky = Cholesky(K, n: n) else { return nil }
        self.cholesky = cholesky
        alpha = cholesky.solve(y)
    }

    private init(extending base: GaussianProcess, with x: [Double], value: Double, cholesky: Cholesky) {
        n = base.n + 1
        d = base.d
        inputs = base.inputs + x
        y = base.y + [value]
        hyper = base.hyper
        categorical = base.categorical
        inverseSquaredLengthscales = base.inverseSquaredLengthscales
        self.cholesky = cholesky
        alpha = cholesky.solve(y)
    }

    /// r² between row a of `p` and row b of `q`.
    @inline(__always)
    static func squaredDistance(_ p: [Double], _ a: Int, _ q: [Double], _ b: Int, d: Int, _ inverseSquared: [Double], _ categorical: [Bool]) -> Double {
        var r2 = 0.0
        for j in 0..<d {
            r2 += Matern52.squaredDifference(p[a * d + j], q[b * d + j], categorical: categorical[j]) * inverseSquared[j]
        }
        return r2
    }

    /// The kernel vector k(x, X).
    func kernelVector(_ x: [Double]) -> [Double] {
        (0..<n).map { i in hyper.scale * Matern52.value(Self.squaredDistance(x, 0, inputs, i, d: d, inverseSquaredLengthscales, categorical).squareRoot()) }
    }

    /// Posterior mean and variance of f at x, with their gradients when asked (categorical
    /// coordinates get a zero gradient: the acquisition optimizer moves them by enumeration).
    func predict(_ x: [Double], gradient: Bool = false) -> (mean: Double, variance: Double, dMean: [Double], dVariance: [Double]) {
        // One pass over the training points: k(x, X_i) and, for the gradient, −(dk/dr)/r.
        var k = [Double](repeating: 0, count: n)
        var radial = gradient ? [Double](repeating: 0, count: n) : []
        var mean = 0.0
        let scale = hyper.scale
        for i in 0..<n {
            let r2 = Self.squaredDistance(x, 0, inputs, i, d: d, inverseSquaredLengthscales, categorical)
            let r = r2.squareRoot()
            let e = expNegative(-Matern52.sqrt5 * r)
            let value = scale * (1 + Matern52.sqrt5 * r + (5.0 / 3.0) * r2) * e
            k[i] = value
            mean += value * alpha[i]
            if gradient { radial[i] = scale * (5.0 / 3.0) * (1 + Matern52.sqrt5 * r) * e }
        }
        let v = cholesky.solveLower(k)
        var explained = 0.0
        for value in v { explained += value * value }
        let variance = max(1e-12 * scale, scale - explained)
        guard gradient else { return (mean, variance, [], []) }
        let w = cholesky.solveUpper(v)  // K⁻¹k
        var dMean = [Double](repeating: 0, count: d)
        var dVariance = [Double](repeating: 0, count: d)
        for i in 0..<n {
            let meanFactor = -radial[i] * alpha[i], varianceFactor = 2 * radial[i] * w[i]
            for j in 0..<d where !categorical[j] {
                let delta = (x[j] - inputs[i * d + j]) * inverseSquaredLengthscales[j]
                dMean[j] += meanFactor * delta
                dVariance[j] += varianceFactor * delta
            }
        }
        return (mean, variance, dMean, dVariance)
    }

    /// Posterior means and variances of f at m points (m×d row-major), by one forward
    /// substitution over all of them in blocks.
    func posterior(_ points: [Double], count m: Int) -> (mean: [Double], variance: [Double]) {
        precondition(points.count == m * d)
        var means = [Double](repeating: 0, count: m)
        var variances = [Double](repeating: hyper.scale, count: m)
        let block = min(m, 256)
        var kernel = [Double](repeating: 0, count: n * block)
        // The block's coordinates dimension by dimension (d×block), so the distance loop runs along candidates.
        var columns = [Double](repeating: 0, count: d * block)
        var r2 = [Double](repeating: 0, count: block)
        let scale = hyper.scale, floor = 1e-12 * hyper.scale
        var start = 0
        while start < m {
            let width = min(block, m - start)
            kernel.withUnsafeMutableBufferPointer { kernel in
            columns.withUnsafeMutableBufferPointer { columns in
            r2.withUnsafeMutableBufferPointer { r2 in
            inputs.withUnsafeBufferPointer { inputs in
            points.withUnsafeBufferPointer { points in
            means.withUnsafeMutableBufferPointer { means in
            variances.withUnsafeMutableBufferPointer { variances in
                let kc = kernel.baseAddress!, columns = columns.baseAddress!, r2 = r2.baseAddress!
                for c in 0..<width {
                    for j in 0..<d { columns[j * width + c] = points[(start + c) * d + j] }
                }
                // Kc[i][c] = k(X_i, point_c).
                for i in 0..<n {
                    for c in 0..<width { r2[c] = 0 }
                    for j in 0..<d {
                        let xij = inputs[i * d + j], w = inverseSquaredLengthscales[j]
                        let column = columns + j * width
                        if categorical[j] {
                            for c in 0..<width where abs(column[c] - xij) > 1e-9 { r2[c] += w }
                        } else {
                            for c in 0..<width {
                                let delta = column[c] - xij
                                r2[c] += delta * delta * w
                            }
                        }
                    }
                    let row = kc + i * width
                    let a = alpha[i]
                    let mean = means.baseAddress! + start
                    var c = 0
                    // Four candidates at a time in vector registers, then the rest one by one.
                    while c + 4 <= width {
                        let q = UnsafeRawPointer(r2 + c).loadUnaligned(as: SIMD4<Double>.self)
                        let r = q.squareRoot()
                        let k = scale * (1 + Matern52.sqrt5 * r + (5.0 / 3.0) * q) * expNegative(-Matern52.sqrt5 * r)
                        UnsafeMutableRawPointer(row + c).storeBytes(of: k, as: SIMD4<Double>.self)
                        let m = UnsafeRawPointer(mean + c).loadUnaligned(as: SIMD4<Double>.self)
                        UnsafeMutableRawPointer(mean + c).storeBytes(of: m + a * k, as: SIMD4<Double>.self)
                        c += 4
                    }
                    while c < width {
                        let r = r2[c].squareRoot()
                        let k = scale * (1 + Matern52.sqrt5 * r + (5.0 / 3.0) * r2[c]) * expNegative(-Matern52.sqrt5 * r)
                        row[c] = k
                        mean[c] += a * k
                        c += 1
                    }
                }
                cholesky.solveLowerInPlace(kc, columns: width)
                for i in 0..<n {
                    let row = kc + i * width
                    for c in 0..<width { variances[start + c] -= row[c] * row[c] }
                }
                for c in 0..<width { variances[start + c] = max(floor, variances[start + c]) }
            }
            }
            }
            }
            }
            }
            }
            start += width
        }
        return (means, variances)
    }

    /// The same process with one more observation (kriging believer: the value it predicts there),
    /// by extending the Cholesky factor; the hyperparameters stay.
    func conditioned(on x: [Double], value: Double) -> GaussianProcess {
        let grown = cholesky.extended(with: kernelVector(x), diagonal: hyper.scale + hyper.noise + cholesky.jitter)
        return GaussianProcess(extending: self, with: x, value: value, cholesky: grown)
    }

    // MARK: Fitting

    /// Negative log posterior of the hyperparameters and its gradient in log-space.
    static func negativeLogPosterior(X: [[Double]], y: [Double], logVector: [Double], categorical: [Bool]? = nil) -> (value: Double, gradient: [Double]) {
        let d = logVector.count - 2
        return FitProblem(inputs: X.flatMap { $0 }, n: X.count, d: d, y: y, categorical: categorical ?? Array(repeating: false, count: d)).evaluate(logVector)
    }

    /// Fits the hyperparameters (a few starts, the best kept) and returns the process.
    static func fit(X: [[Double]], y: [Double], starts: [GPHyperparameters], categorical: [Bool]? = nil, maxIterations: Int = 60) -> GaussianProcess? {
        let d = starts[0].lengthscales.count
        return fit(inputs: X.flatMap { $0 }, n: X.count, y: y, starts: starts, categorical: categorical ?? Array(repeating: false, count: d), maxIterations: maxIterations)
    }

    /// Fits the hyperparameters on n rows of `inputs` (a few starts, the best kept).
    static func fit(inputs: [Double], n: Int, y: [Double], starts: [GPHyperparameters], categorical: [Bool], maxIterations: Int = 60) -> GaussianProcess? {
        let d = starts[0].lengthscales.count
        let (lower, upper) = GPHyperparameters.bounds(dimension: d)
        var best: (value: Double, x: [Double])?
        let problem = FitProblem(inputs: inputs, n: n, d: d, y: y, categorical: categorical)
        for start in starts {
            let result = LBFGS.minimize(start.logVector, lower: lower, upper: upper, maxIterations: maxIterations, tolerance: 1e-6) { v in
                problem.evaluate(v)
            }
            if result.value.isFinite, best == nil || result.value < best!.value { best = (result.value, result.x) }
        }
        let hyper = best.map { GPHyperparameters(logVector: $0.x) } ?? starts[0]
        return GaussianProcess(inputs: inputs, n: n, y: y, hyper: hyper, categorical: categorical)
    }
}

/// The hyperparameter fit's objective, with the pairwise squared differences computed once.
struct FitProblem {
    let n: Int
    let d: Int
    let y: [Double]
    /// δ_j² of each pair a > b, row-major over pairs then dimensions.
    let squaredDifferences: [Double]

    init(inputs: [Double], n: Int, d: Int, y: [Double], categorical: [Bool]) {
        self.n = n
        self.d = d
        self.y = y
        var differences = [Double](repeating: 0, count: n * (n - 1) / 2 * d)
        var p = 0
        for a in 0..<n {
            for b in 0..<a {
                for j in 0..<d {
                    differences[p * d + j] = Matern52.squaredDifference(inputs[a * d + j], inputs[b * d + j], categorical: categorical[j])
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
        var radial = [Double](repeating: 0, count: pairs)
        var K = [Double](repeating: 0, count: n * n)
        squaredDifferences.withUnsafeBufferPointer { sq in
            var p = 0
            for a in 0..<n {
                for b in 0..<a {
                    var r2 = 0.0
                    for j in 0..<d { r2 += sq[p * d + j] * inverseSquaredLengthscales[j] }
                    let r = r2.squareRoot()
                    let e = expNegative(-Matern52.sqrt5 * r)
                    radial[p] = hyper.scale * (5.0 / 3.0) * (1 + Matern52.sqrt5 * r) * e
                    let k = hyper.scale * (1 + Matern52.sqrt5 * r + 5 * r2 / 3) * e
                    K[a * n + b] = k
                    K[b * n + a] = k
                    p += 1
                }
                K[a * n + a] = hyper.scale + hyper.noise
            }
        }
        guard let cholesky = Cholesky(K, n: n) else { return (.infinity, Array(repeating: 0, count: d + 2)) }
        let alpha = cholesky.solve(y)
        var quadratic = 0.0
        for i in 0..<n { quadratic += y[i] * alpha[i] }
        let logLikelihood = -0.5 * quadratic - 0.5 * cholesky.logDeterminant - 0.5 * Double(n) * log(2 * Double.pi)
        // W = ααᵀ − K⁻¹; ∂LML/∂θ = ½ tr(W ∂K/∂θ) (W is symmetric: off-diagonal pairs count twice).
        let inverse = cholesky.inverse()
        var gradient = [Double](repeating: 0, count: d + 2)
        var lengthscaleGradient = [Double](repeating: 0, count: d)
        squaredDifferences.withUnsafeBufferPointer { sq in
            var p = 0
            for a in 0..<n {
                let waa = alpha[a] * alpha[a] - inverse[a * n + a]
                gradient[d] += 0.5 * waa * hyper.scale
                gradient[d + 1] += 0.5 * waa * hyper.noise
                for b in 0..<a {
                    let w = alpha[a] * alpha[b] - inverse[a * n + b]
                    gradient[d] += w * K[a * n + b]
                    let factor = w * radial[p]
                    for j in 0..<d { lengthscaleGradient[j] += factor * sq[p * d + j] }
                    p += 1
                }
            }
        }
        for j in 0..<d { gradient[j] = lengthscaleGradient[j] * inverseSquaredLengthscales[j] }
        let prior = hyper.logPrior()
        return (-(logLikelihood + prior.value), (0..<(d + 2)).map { -(gradient[$0] + prior.gradient[$0]) })
    }
}
