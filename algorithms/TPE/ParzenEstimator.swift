// Notation: one parameter at a time (the univariate TPE). x are observations in the parameter's
// internal coordinate (the value, or its logarithm on a log scale), [lo, hi] the support (padded by
// half a step for a grid), w the mixture weights (observations first, the prior last, summing to 1),
// μ and σ each kernel's centre and bandwidth. The prior is one wide kernel: μ = (lo + hi)/2,
// σ = hi − lo, or the uniform distribution over a categorical's k choices.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How much each observation of a group counts (Optuna's default): the most recent 25 fully, older
/// ones on a linear ramp from 1/n up to 1, oldest lowest. Observations are in trial order.
enum ParzenWeights {
    /// Trials counted at full weight.
    static let flatCount = 25

    static func recency(count n: Int) -> [Double] {
        guard n > flatCount else { return Array(repeating: 1, count: Swift.max(0, n)) }
        let ramp = n - flatCount
        let start = 1 / Double(n)
        var weights = [Double](repeating: 1, count: n)
        if ramp == 1 {
            weights[0] = start
        } else {
            for i in 0..<ramp { weights[i] = start + (1 - start) * Double(i) / Double(ramp - 1) }
        }
        return weights
    }

    /// `weights` followed by `priorWeight`, divided by their sum; just the prior when there are no
    /// observations.
    static func mixture(_ weights: [Double], priorWeight: Double) -> [Double] {
        guard !weights.isEmpty else { return [1] }
        var result = weights
        result.append(priorWeight)
        let total = result.reduce(0, +)
        guard total > 0, total.isFinite else { return [Double](repeating: 1 / Double(result.count), count: result.count) }
        for i in result.indices { result[i] /= total }
        return result
    }
}

/// A one-dimensional mixture of Gaussians truncated to [lo, hi]: a kernel at each observation and
/// the prior (Optuna's univariate Parzen estimator for a float or int parameter, and one dimension of
/// its multivariate one, whose kernels are products of these over the dimensions).
///
/// Bandwidths: each observation's σ is the larger of the gaps to its neighbours among the sorted
/// observations and the bounds; when there are two or more, the smallest and largest take the gap
/// on their inner side only. Then "magic clip": σ is kept within [(hi − lo)/min(100, n + 2), hi − lo].
struct TruncatedGaussianMixture: Sendable {
    let lo: Double
    let hi: Double
    /// Kernel centres, bandwidths and weights; the prior is the last kernel.
    let mus: [Double]
    let sigmas: [Double]
    let weights: [Double]
    /// Per kernel: log w, the weight's share of the log-density.
    let logWeights: [Double]
    /// Per kernel: − log σ − log(Φ(b) − Φ(a)) − log √(2π), the constant of its own log-density.
    private let kernelLogOffsets: [Double]
    /// Per kernel: − log(Φ(b) − Φ(a)), the constant of its own log-mass over a cell.
    private let kernelLogMassOffsets: [Double]
    /// Running sums of the weights, for picking a kernel.
    private let cumulativeWeights: [Double]

    /// Requires lo < hi, finite; observations are clamped to [lo, hi]; `observationWeights` has one
    /// positive weight per observation.
    /// `prior` is the prior kernel's centre and bandwidth; by default Optuna's, ((lo + hi)/2, hi − lo).
    init(observations: [Double], observationWeights: [Double], priorWeight: Double, lo: Double, hi: Double,
         prior: (mu: Double, sigma: Double)? = nil) {
        precondition(lo < hi && lo.isFinite && hi.isFinite, "support [\(lo), \(hi)]")
        precondition(observations.count == observationWeights.count, "one weight per observation")
        self.lo = lo
        self.hi = hi
        let clamped = observations.map { Swift.min(hi, Swift.max(lo, $0)) }
        var mus = clamped
        var sigmas = Self.bandwidths(clamped, lo: lo, hi: hi)
        let prior = prior ?? (0.5 * (lo + hi), hi - lo)
        mus.append(prior.mu)
        sigmas.append(prior.sigma)
        let weights = ParzenWeights.mixture(observationWeights, priorWeight: priorWeight)
        self.mus = mus
        self.sigmas = sigmas
        self.weights = weights

        var kernelLogOffsets = [Double](repeating: 0, count: mus.count)
        var kernelLogMassOffsets = kernelLogOffsets
        var cumulative = kernelLogOffsets
        var total = 0.0
        for i in mus.indices {
            // A kernel more than 8.5 σ inside both bounds keeps all but < 1e-17 of its mass: log 1 = 0.
            let a = (lo - mus[i]) / sigmas[i], b = (hi - mus[i]) / sigmas[i]
            kernelLogMassOffsets[i] = a < -8.5 && b > 8.5 ? 0 : -TruncatedNormal.logMass(a, b)
            kernelLogOffsets[i] = kernelLogMassOffsets[i] - log(sigmas[i]) - TruncatedNormal.logSqrtTwoPi
            total += weights[i]
            cumulative[i] = total
        }
        logWeights = weights.map { log($0) }
        self.kernelLogOffsets = kernelLogOffsets
        self.kernelLogMassOffsets = kernelLogMassOffsets
        cumulativeWeights = cumulative
    }

    var kernelCount: Int { mus.count }

    /// The observations' bandwidths (the prior's excluded), clipped.
    static func bandwidths(_ observations: [Double], lo: Double, hi: Double) -> [Double] {
        let n = observations.count
        guard n > 0 else { return [] }
        // The sorted observations between the two bounds, ties in observation order.
        var pairs = [(value: Double, index: Int)](unsafeUninitializedCapacity: n) { buffer, count in
            for i in 0..<n { buffer[i] = (observations[i], i) }
            count = n
        }
        pairs.sort { $0.value < $1.value || ($0.value == $1.value && $0.index < $1.index) }
        var sorted = [Double](repeating: 0, count: n + 2)
        sorted[0] = lo
        for j in 0..<n { sorted[j + 1] = pairs[j].value }
        sorted[n + 1] = hi
        let maxSigma = hi - lo
        let minSigma = (hi - lo) / Swift.min(100, Double(n) + 2)
        var sigmas = [Double](repeating: 0, count: n)
        for j in 0..<n {
            var sigma = Swift.max(sorted[j + 1] - sorted[j], sorted[j + 2] - sorted[j + 1])
            // With two or more, the outermost observations look inward only.
            if n >= 2 && j == 0 { sigma = sorted[2] - sorted[1] }
            if n >= 2 && j == n - 1 { sigma = sorted[n] - sorted[n - 1] }
            sigmas[pairs[j].index] = Swift.min(maxSigma, Swift.max(minSigma, sigma))
        }
        return sigmas
    }

    /// A kernel index drawn by weight.
    func sampleKernel(_ rng: inout SeededGenerator) -> Int {
        let u = rng.unit() * (cumulativeWeights.last ?? 1)
        var k = 0
        while k < cumulativeWeights.count - 1, cumulativeWeights[k] <= u { k += 1 }
        return k
    }

    /// A draw from kernel k's truncated Gaussian, its σ multiplied by `scale`.
    func sample(kernel k: Int, scale: Double = 1, _ rng: inout SeededGenerator) -> Double {
        let sigma = sigmas[k] * scale, mu = mus[k]
        let z = TruncatedNormal.sample((lo - mu) / sigma, (hi - mu) / sigma, &rng)
        return Swift.min(hi, Swift.max(lo, mu + sigma * z))
    }

    /// A draw: a kernel by weight, then its truncated Gaussian.
    func sample(_ rng: inout SeededGenerator) -> Double {
        sample(kernel: sampleKernel(&rng), &rng)
    }

    /// Adds each kernel's own log-density at x (in [lo, hi]), without its weight, to `terms[i]`.
    @inline(__always)
    func addKernelLogDensities(at x: Double, to terms: UnsafeMutableBufferPointer<Double>) {
        for i in 0..<terms.count {
            let z = (x - mus[i]) / sigmas[i]
            terms[i] += kernelLogOffsets[i] - 0.5 * z * z
        }
    }

    /// Adds each kernel's own log-probability of the cell [lower, upper] ⊆ [lo, hi], without its
    /// weight, to `terms[i]`.
    @inline(__always)
    func addKernelLogMasses(from lower: Double, to upper: Double, to terms: UnsafeMutableBufferPointer<Double>) {
        for i in 0..<terms.count {
            terms[i] += kernelLogMassOffsets[i] + TruncatedNormal.logMass((lower - mus[i]) / sigmas[i], (upper - mus[i]) / sigmas[i])
        }
    }

    /// log of the mixture's density at x (in [lo, hi]).
    func logDensity(_ x: Double) -> Double {
        LogSumExp.ofTerms(startingAt: logWeights) { addKernelLogDensities(at: x, to: $0) }
    }

    /// log of the mixture's probability of the cell [lower, upper] ⊆ [lo, hi] (a grid value's share).
    func logMass(from lower: Double, to upper: Double) -> Double {
        LogSumExp.ofTerms(startingAt: logWeights) { addKernelLogMasses(from: lower, to: upper, to: $0) }
    }
}

/// log Σ_i exp(t_i) over per-kernel terms, without overflow.
enum LogSumExp {
    /// The terms start as `initial` (one per kernel, e.g. the log weights), `accumulate` adds to them
    /// in a scratch buffer, and the log of the sum of their exponentials is returned.
    @inline(__always)
    static func ofTerms(startingAt initial: [Double], _ accumulate: (UnsafeMutableBufferPointer<Double>) -> Void) -> Double {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: initial.count) { terms in
            _ = terms.initialize(from: initial)
            accumulate(terms)
            var maximum = -Double.infinity
            for i in 0..<terms.count { maximum = Swift.max(maximum, terms[i]) }
            guard maximum.isFinite else { return maximum }
            var sum = 0.0
            for i in 0..<terms.count { sum += exp(terms[i] - maximum) }
            return maximum + log(sum)
        }
    }
}

/// The categorical kernels of a Parzen estimator: observation i's kernel puts 1 + prior_weight/(n+1)
/// on its own choice and prior_weight/(n+1) on every choice, normalized (an Aitchison–Aitken-like
/// kernel whose smoothing shrinks as observations accumulate); the prior kernel, last, is uniform.
/// One dimension of the multivariate estimator; the univariate one sums them into one distribution.
struct CategoricalKernels: Sendable {
    /// Each observation's choice index.
    let observations: [Int]
    let choices: Int
    /// prior_weight/(n+1), every choice's share of an observation's kernel before normalizing.
    let base: Double
    /// base · choices + 1, the normalizer of an observation's kernel.
    let rowTotal: Double

    /// `observations` are choice indices in 0..<choices; choices ≥ 1.
    init(observations: [Int], priorWeight: Double, choices: Int) {
        precondition(choices >= 1)
        self.observations = observations
        self.choices = choices
        base = priorWeight / Double(observations.count + 1)
        rowTotal = base * Double(choices) + 1
    }

    var kernelCount: Int { observations.count + 1 }

    /// Adds each kernel's own log-probability of `choice` to `terms[i]`.
    @inline(__always)
    func addKernelLogProbabilities(of choice: Int, to terms: UnsafeMutableBufferPointer<Double>) {
        let hit = log((base + 1) / rowTotal), miss = log(base / rowTotal)
        for i in 0..<observations.count { terms[i] += observations[i] == choice ? hit : miss }
        terms[observations.count] -= log(Double(choices))
    }

    /// A draw from kernel k: its own choice with probability 1/rowTotal, else a uniform choice.
    func sample(kernel k: Int, _ rng: inout SeededGenerator) -> Int {
        let uniform = Swift.min(choices - 1, Int(rng.unit() * Double(choices)))
        guard k < observations.count else { return uniform }
        return rng.unit() * rowTotal < 1 ? observations[k] : uniform
    }
}

/// The univariate categorical Parzen estimator: the mixture of `CategoricalKernels` is itself one
/// categorical distribution, kept as its probabilities.
struct CategoricalParzenEstimator: Sendable {
    /// Probability of each choice; they sum to 1.
    let probabilities: [Double]
    private let cumulative: [Double]

    /// `observations` are choice indices in 0..<choices, with one positive weight each; choices ≥ 1.
    init(observations: [Int], observationWeights: [Double], priorWeight: Double, choices: Int) {
        precondition(choices >= 1 && observations.count == observationWeights.count)
        let kernels = CategoricalKernels(observations: observations, priorWeight: priorWeight, choices: choices)
        let k = Double(choices)
        var probabilities = [Double](repeating: 0, count: choices)
        let weights = ParzenWeights.mixture(observationWeights, priorWeight: priorWeight)
        if observations.isEmpty {
            for c in 0..<choices { probabilities[c] = 1 / k }
        } else {
            var spread = weights[weights.count - 1] / k
            for (i, c) in observations.enumerated() {
                spread += weights[i] * kernels.base / kernels.rowTotal
                probabilities[c] += weights[i] / kernels.rowTotal
            }
            for c in 0..<choices { probabilities[c] += spread }
        }
        var total = 0.0
        var cumulative = probabilities
        for c in 0..<choices {
            total += probabilities[c]
            cumulative[c] = total
        }
        self.probabilities = probabilities
        self.cumulative = cumulative
    }

    func sample(_ rng: inout SeededGenerator) -> Int {
        let u = rng.unit() * (cumulative.last ?? 1)
        var c = 0
        while c < cumulative.count - 1, cumulative[c] <= u { c += 1 }
        return c
    }

    func logProbability(_ choice: Int) -> Double {
        log(probabilities[choice])
    }
}
