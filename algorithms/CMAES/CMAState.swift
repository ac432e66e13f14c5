// Notation (Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772):
//   n dimension, λ population, μ parents, w_i recombination weights (negative for i > μ),
//   m mean, σ step size, C covariance (= B·D²·Bᵀ), p_σ / p_c evolution paths,
//   y_i = (x_i − m)/σ, y_w = Σ_{i≤μ} w_i y_i.
// Margin (Hamano et al., GECCO 2022): for a discrete coordinate j, A_j rescales the sample
// around m_j before it is rounded, so that the probability of leaving m_j's value never drops
// below α/2 per side; α = 1/(nλ).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Strategy parameters for dimension n and population λ (Hansen 2016, Table 1, with active CMA's
/// negative weights).
struct CMAParameters: Sendable {
    let n: Int
    let lambda: Int
    let mu: Int
    let weights: [Double]
    let muEff: Double
    let cc: Double
    let cSigma: Double
    let dSigma: Double
    let c1: Double
    let cMu: Double
    /// E‖N(0, I)‖.
    let chiN: Double

    init(n: Int, lambda: Int) {
        self.n = n
        self.lambda = lambda
        mu = lambda / 2
        let nd = Double(n)
        let raw = (0..<lambda).map { log((Double(lambda) + 1) / 2) - log(Double($0 + 1)) }
        let positive = raw.prefix(mu), negative = raw.dropFirst(mu)
        muEff = pow(positive.reduce(0, +), 2) / positive.map { $0 * $0 }.reduce(0, +)
        let muEffMinus = negative.isEmpty ? 0 : pow(negative.reduce(0, +), 2) / negative.map { $0 * $0 }.reduce(0, +)
        c1 = 2 / (pow(nd + 1.3, 2) + muEff)
        cMu = min(1 - c1 - 1e-8, 2 * (muEff - 2 + 1 / muEff) / (pow(nd + 2, 2) + muEff))
        let alphaMinus = min(1 + c1 / cMu, 1 + 2 * muEffMinus / (muEff + 2), (1 - c1 - cMu) / (nd * cMu))
        let positiveSum = raw.filter { $0 > 0 }.reduce(0, +)
        let negativeSum = raw.filter { $0 < 0 }.map(abs).reduce(0, +)
        weights = raw.map { $0 >= 0 ? $0 / positiveSum : alphaMinus * $0 / negativeSum }
        cSigma = (muEff + 2) / (nd + muEff + 5)
        dSigma = 1 + 2 * max(0, ((muEff - 1) / (nd + 1)).squareRoot() - 1) + cSigma
        cc = (4 + muEff / nd) / (nd + 4 + 2 * muEff / nd)
        chiN = nd.squareRoot() * (1 - 1 / (4 * nd) + 1 / (21 * nd * nd))
    }
}

extension CMAParameters {
    /// C^(-1/2)·v = B·D⁻¹·Bᵀ·v, where C = B·D²·Bᵀ (B's columns, row-major, the eigenvectors).
    static func inverseSquareRoot(_ v: [Double], B: [Double], D: [Double]) -> [Double] {
        let n = D.count
        var t = [Double](repeating: 0, count: n)
        for j in 0..<n {
            var s = 0.0
            for i in 0..<n { s += B[i * n + j] * v[i] }
            t[j] = s / D[j]
        }
        var out = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var s = 0.0
            for j in 0..<n { s += B[i * n + j] * t[j] }
            out[i] = s
        }
        return out
    }

    /// One CMA-ES update of the mean, the step size, the evolution paths and the covariance from
    /// the steps y_i = (x_i − m)/σ of a generation, best first; `generation` counts this one (from
    /// 1), and B, D decompose the C the steps were drawn with.
    func update(ranked y: [[Double]], generation: Int, B: [Double], D: [Double], mean: inout [Double], sigma: inout Double,
                C: inout [Double], pSigma: inout [Double], pc: inout [Double]) {
        var yw = [Double](repeating: 0, count: n)
        for i in 0..<mu { for j in 0..<n { yw[j] += weights[i] * y[i][j] } }
        for j in 0..<n { mean[j] += sigma * yw[j] }

        // Step size: cumulative step-size adaptation on C^(-1/2)·y_w.
        let invSqrtYw = Self.inverseSquareRoot(yw, B: B, D: D)
        let cs = cSigma
        let sigmaFactor = (cs * (2 - cs) * muEff).squareRoot()
        for j in 0..<n { pSigma[j] = (1 - cs) * pSigma[j] + sigmaFactor * invSqrtYw[j] }
        let normPSigma = pSigma.map { $0 * $0 }.reduce(0, +).squareRoot()
        sigma = min(sigma * exp((cs / dSigma) * (normPSigma / chiN - 1)), 1e32)

        // Covariance: rank-one update with p_c, rank-μ update with all λ (active: negative weights).
        let hSigma = normPSigma / (1 - pow(1 - cs, Double(2 * (generation + 1)))).squareRoot()
            < (1.4 + 2 / (Double(n) + 1)) * chiN ? 1.0 : 0.0
        let ccFactor = (cc * (2 - cc) * muEff).squareRoot()
        for j in 0..<n { pc[j] = (1 - cc) * pc[j] + hSigma * ccFactor * yw[j] }
        let deltaH = (1 - hSigma) * cc * (2 - cc)
        let weightSum = weights.reduce(0, +)
        let decay = 1 + c1 * deltaH - c1 - cMu * weightSum
        var rankMu = [Double](repeating: 0, count: n * n)
        for i in 0..<lambda {
            var w = weights[i]
            if w < 0 {
                let norm2 = Self.inverseSquareRoot(y[i], B: B, D: D).map { $0 * $0 }.reduce(0, +)
                w *= Double(n) / (norm2 + 1e-8)
            }
            for a in 0..<n { for b in 0..<n { rankMu[a * n + b] += w * y[i][a] * y[i][b] } }
        }
        for a in 0..<n {
            for b in 0..<n {
                C[a * n + b] = decay * C[a * n + b] + c1 * pc[a] * pc[b] + cMu * rankMu[a * n + b]
            }
        }
    }
}

/// The search distribution of one CMA-ES run on the unit cube, and its update.
struct CMAState: Sendable {
    let p: CMAParameters
    /// Per coordinate: the number of values of a discrete coordinate (values at the centres
    /// (i + ½)/k of k equal cells), 0 for a continuous one.
    let cardinality: [Int]
    /// α of the margin.
    let margin: Double
    let sigma0: Double

    private(set) var mean: [Double]
    private(set) var sigma: Double
    /// Row-major n×n.
    private(set) var C: [Double]
    private(set) var pSigma: [Double]
    private(set) var pc: [Double]
    /// Margin scaling of discrete coordinates (1 elsewhere).
    private(set) var A: [Double]
    /// Eigenvectors (columns, row-major) and square roots of the eigenvalues of C.
    private(set) var B: [Double]
    private(set) var D: [Double]
    /// Generations told so far.
    private(set) var generation = 0
    /// Best and worst objective of the latest generations, newest last.
    private var history: [(best: Double, worst: Double)] = []
    /// Why this run should end, once it should.
    private(set) var stopReason: String?

    init(mean: [Double], sigma: Double, lambda: Int, cardinality: [Int]) {
        let n = mean.count
        p = CMAParameters(n: n, lambda: lambda)
        self.cardinality = cardinality
        margin = 1 / (Double(n) * Double(lambda))
        sigma0 = sigma
        self.mean = mean
        self.sigma = sigma
        C = (0..<(n * n)).map { $0 / n == $0 % n ? 1 : 0 }
        pSigma = Array(repeating: 0, count: n)
        pc = Array(repeating: 0, count: n)
        A = Array(repeating: 1, count: n)
        B = C
        D = Array(repeating: 1, count: n)
    }

    var n: Int { p.n }

    /// Generations of recent history the flat-range stop test looks at.
    var historyLength: Int { 10 + Int((30 * Double(n) / Double(p.lambda)).rounded(.up)) }

    // MARK: Sampling

    /// One sample: the raw point x ~ N(m, σ²C) (what the update learns from) and the point to
    /// evaluate (continuous coordinates inside [0, 1], discrete ones on their values). Continuous
    /// coordinates outside the cube are resampled up to 100 times, then clipped.
    func sample(_ rng: inout SeededGenerator) -> (raw: [Double], evaluated: [Double]) {
        var x = draw(&rng)
        var tries = 1
        while tries < 100, !continuousInside(x) {
            x = draw(&rng)
            tries += 1
        }
        var evaluated = x
        for j in 0..<n {
            if cardinality[j] > 0 {
                let k = Double(cardinality[j])
                let scaled = (x[j] - mean[j]) * A[j] + mean[j]
                let index = min(k - 1, max(0, (scaled * k).rounded(.down)))
                evaluated[j] = (index + 0.5) / k
            } else {
                evaluated[j] = min(1, max(0, x[j]))
            }
        }
        return (x, evaluated)
    }

    private func draw(_ rng: inout SeededGenerator) -> [Double] {
        let z = (0..<n).map { j in D[j] * rng.nextGaussian() }
        var x = mean
        for i in 0..<n {
            var s = 0.0
            for j in 0..<n { s += B[i * n + j] * z[j] }
            x[i] += sigma * s
        }
        return x
    }

    private func continuousInside(_ x: [Double]) -> Bool {
        (0..<n).allSatisfy { cardinality[$0] > 0 || (x[$0] >= 0 && x[$0] <= 1) }
    }

    // MARK: Update

    /// Updates the distribution from one generation: λ raw points and their objective values
    /// (lower is better; ties keep their order).
    mutating func tell(_ solutions: [(x: [Double], f: Double)]) {
        precondition(solutions.count == p.lambda, "told \(solutions.count) solutions, population is \(p.lambda)")
        let sorted = solutions.enumerated().sorted { ($0.element.f, $0.offset) < ($1.element.f, $1.offset) }.map(\.element)
        generation += 1
        history.append((sorted[0].f, sorted[sorted.count - 1].f))
        if history.count > historyLength { history.removeFirst(history.count - historyLength) }

        let y = sorted.map { s in (0..<n).map { (s.x[$0] - mean[$0]) / sigma } }
        p.update(ranked: y, generation: generation, B: B, D: D, mean: &mean, sigma: &sigma, C: &C, pSigma: &pSigma, pc: &pc)
        updateEigen()
        applyMargin()
        stopReason = checkStop(sorted.map(\.f))
    }

    /// C^(-1/2)·v = B·D⁻¹·Bᵀ·v.
    func invSqrtC(_ v: [Double]) -> [Double] {
        CMAParameters.inverseSquareRoot(v, B: B, D: D)
    }

    private mutating func updateEigen() {
        for a in 0..<n {
            for b in 0..<a {
                let symmetric = (C[a * n + b] + C[b * n + a]) / 2
                C[a * n + b] = symmetric
                C[b * n + a] = symmetric
            }
        }
        let eigen = SymmetricEigen(C, n: n)
        B = eigen.vectors
        D = eigen.values.map { max($0, 1e-300).squareRoot() }
    }

    // MARK: Margin

    /// Keeps every discrete coordinate able to move: rescales A_j (and nudges m_j) so that the
    /// probability of sampling a value other than m_j's is at least α/2 on each side.
    private mutating func applyMargin() {
        let alpha = margin
        for j in 0..<n where cardinality[j] > 1 {
            let k = cardinality[j]
            let (low, up) = limits(mean[j], k: k)
            let scale = sigma * A[j] * C[j * n + j].squareRoot()
            var lowCDF = Normal.cdf((low - mean[j]) / scale)
            var upCDF = 1 - Normal.cdf((up - mean[j]) / scale)
            let midCDF = 1 - lowCDF - upCDF
            if max(lowCDF, upCDF) > 0.5 {
                // m_j sits at an end (or across a threshold): pull it back within reach.
                if min(lowCDF, upCDF) < alpha {
                    let sign: Double = mean[j] > up ? 1 : mean[j] < up ? -1 : 0
                    let distance = sigma * A[j] * C[j * n + j].squareRoot() * Normal.quantile(1 - alpha)
                    mean[j] = up + sign * distance
                }
                continue
            }
            lowCDF = max(lowCDF, alpha / 2)
            upCDF = max(upCDF, alpha / 2)
            let excess = 1 - lowCDF - upCDF - midCDF
            let denominator = lowCDF + midCDF + upCDF - 3 * alpha / 2
            let modifiedLow = min(0.5 - 1e-10, max(1e-10, lowCDF + excess * (lowCDF - alpha / 2) / denominator))
            let modifiedUp = min(0.5 - 1e-10, max(1e-10, upCDF + excess * (upCDF - alpha / 2) / denominator))
            let chiLow = Normal.quantile(1 - modifiedLow)
            let chiUp = Normal.quantile(1 - modifiedUp)
            A[j] = (up - low) / ((chiLow + chiUp) * sigma * C[j * n + j].squareRoot())
            mean[j] = (low * chiUp + up * chiLow) / (chiLow + chiUp)
        }
    }

    /// The thresholds around the value nearest to `x`: for an inner value the two cell edges, for
    /// an end value the one edge it has (twice).
    private func limits(_ x: Double, k: Int) -> (Double, Double) {
        let position = min(k - 1, max(0, Int((x * Double(k)).rounded(.down))))
        let lower = min(k - 2, max(0, position - 1)), upper = min(k - 2, max(0, position))
        return (Double(lower + 1) / Double(k), Double(upper + 1) / Double(k))
    }

    /// Probability that a sample's coordinate j leaves the value nearest m_j (for tests).
    func escapeProbability(_ j: Int) -> (low: Double, up: Double) {
        let k = cardinality[j]
        let position = min(k - 1, max(0, Int((mean[j] * Double(k)).rounded(.down))))
        let scale = sigma * A[j] * C[j * n + j].squareRoot()
        let low = position > 0 ? Normal.cdf((Double(position) / Double(k) - mean[j]) / scale) : 1
        let up = position < k - 1 ? 1 - Normal.cdf((Double(position + 1) / Double(k) - mean[j]) / scale) : 1
        return (low, up)
    }

    // MARK: Termination

    private func checkStop(_ sortedValues: [Double]) -> String? {
        if history.count >= historyLength, generation > historyLength {
            let values = history.flatMap { [$0.best, $0.worst] }.filter(\.isFinite)
            if let lo = values.min(), let hi = values.max(), hi - lo < 1e-12 { return "tolfun" }
        }
        let flatIndex = min(sortedValues.count - 1, Int((0.7 * Double(p.lambda)).rounded(.up)) - 1)
        if sortedValues[0].isFinite, sortedValues[0] == sortedValues[flatIndex] { return "flatfitness" }
        let tolx = 1e-12 * sigma0
        if (0..<n).allSatisfy({ sigma * C[$0 * n + $0].squareRoot() < tolx && abs(sigma * pc[$0]) < tolx }) { return "tolx" }
        if let dMax = D.max(), sigma * dMax > 1e4 * sigma0 { return "tolxup" }
        if let dMax = D.max(), let dMin = D.min(), dMin > 0, pow(dMax / dMin, 2) > 1e14 { return "conditioncov" }
        let axis = generation % n
        if (0..<n).allSatisfy({ mean[$0] == mean[$0] + 0.1 * sigma * D[axis] * B[$0 * n + axis] }) { return "noeffectaxis" }
        if (0..<n).contains(where: { mean[$0] == mean[$0] + 0.2 * sigma * C[$0 * n + $0].squareRoot() }) { return "noeffectcoord" }
        return nil
    }
}

// MARK: Checkpoint

extension CMAState {
    /// Writes what `tell` has changed (the rest follows from the dimension, λ, σ0 and the
    /// coordinates, which whoever restores it knows).
    func encode(into writer: inout StateWriter) {
        writer.gaussian(mean, C, pSigma, pc, A, B, D)
        writer.double(sigma)
        writer.int(generation)
        writer.valueHistory(history)
        writer.bool(stopReason != nil)
        if let stopReason { writer.string(stopReason) }
    }

    /// Reads back what `encode(into:)` wrote into a state made with the same dimension, λ, σ0
    /// and coordinates; throws when a length does not fit them.
    mutating func restore(from reader: inout StateReader) throws(StateReader.Malformed) {
        (mean, C, pSigma, pc, A, B, D) = try reader.gaussian(dimension: n)
        sigma = try reader.double()
        generation = try reader.int(in: 0...Int.max)
        history = try reader.valueHistory(limit: historyLength)
        stopReason = try reader.bool() ? try reader.string() : nil
    }
}
