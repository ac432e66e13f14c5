// Notation (Hamano, Nomura, Saito, Uchida, Shirakawa, "CatCMA with Margin", arXiv:2504.07884):
//   the search distribution is a product of a Gaussian N(m, σ²·A·C·A) over the continuous and
//   discrete coordinates (n of them; A diagonal, the margin's scaling, 1 on continuous ones) and of
//   independent categorical distributions q_i over the choices of each categorical parameter
//   (K_i choices, q_i on the simplex).
//   v raw Gaussian sample, x = (v − m)/A + m its unscaled form, y = (x − m)/σ;
//   w_i the CMA-ES weights of the ranked samples, μ = λ/2.
//   Discrete coordinate j with k values: the values are the cell centres (i + ½)/k of the unit
//   interval and t_i the midpoints between neighbouring values (the thresholds).
//   Margin: α = 1 − 0.73^(1/(N_int + N_cat)) bounds from below the probability that a discrete
//   coordinate leaves the value of m_j; for a categorical parameter, every choice keeps a
//   probability of at least α/(K_i − 1).
//   The categorical parameters follow the adaptive stochastic natural gradient (ASNG, Akimoto et
//   al., ICML 2019): δ the trust region, s its evolution path, γ its normaliser, Δ the step ratio.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a coordinate of a CMA-ES search distribution is.
enum CMACoordinate: Sendable, Equatable {
    /// A double without step, on [0, 1].
    case continuous
    /// An ordered coordinate with this many values (ints, stepped doubles, discrete lists).
    case discrete(Int)
    /// An unordered choice among this many.
    case categorical(Int)
}

/// The search distribution of CatCMA with margin over one space with categoricals, and its
/// update: CMA-ES over the continuous and discrete coordinates (with the integer centring and the
/// margin of the paper), the ASNG over the categorical ones, both learning from one ranking.
///
/// Samples and points are in the space's order: a categorical coordinate of a raw sample is the
/// index of its choice; of an evaluated point, the centre (i + ½)/K of the choice's cell.
struct CatCMAState: Sendable {
    let coordinates: [CMACoordinate]
    /// The positions in `coordinates` of the Gaussian (continuous and discrete) coordinates, and
    /// of the categorical ones.
    let gaussianIndices: [Int]
    let categoricalIndices: [Int]
    /// Per Gaussian coordinate: its number of values, 0 when continuous.
    let levels: [Int]
    /// Per categorical coordinate: its number of choices.
    let choices: [Int]
    /// Strategy parameters of the Gaussian part (dimension max(1, n), so that a space of
    /// categoricals alone still has the ranking weights).
    let p: CMAParameters
    /// α of the margin.
    let alpha: Double
    /// Smallest probability of a choice, per categorical coordinate: α/(K_i − 1).
    let qMin: [Double]
    let sigma0: Double

    private(set) var mean: [Double]
    private(set) var sigma: Double
    /// Row-major n×n.
    private(set) var C: [Double]
    private(set) var pSigma: [Double]
    private(set) var pc: [Double]
    /// Margin scaling of the discrete coordinates (1 on continuous ones).
    private(set) var A: [Double]
    private(set) var B: [Double]
    private(set) var D: [Double]
    /// Per discrete coordinate: the probability of leaving m_j's value that the margin last
    /// allowed, and whether a selected sample of the last generation left it.
    private var mutationRate: [Double]
    private var mutated: [Bool]
    /// Recent interquartile ranges of the ranked values, newest first (the box penalty's scale).
    private var interquartileRanges: [Double] = []
    /// Best and worst values of the latest generations, newest last.
    private var valueHistory: [(best: Double, worst: Double)] = []

    /// Per categorical coordinate, the probability of each choice.
    private(set) var q: [[Double]]
    private var delta: Double = 1
    private var bigDelta: Double = 1
    private var gamma: Double = 0
    private var path: [Double]
    private let trustRegion0: Double = 1
    private let signalToNoise: Double = 1.5

    /// Generations told so far.
    private(set) var generation = 0

    static let epsilon = 1e-8

    /// A distribution centred at `mean` (one value per Gaussian coordinate, in order) with step
    /// `sigma`, identity covariance, and every categorical choice equally likely.
    init(coordinates: [CMACoordinate], mean: [Double], sigma: Double, lambda: Int) {
        self.coordinates = coordinates
        gaussianIndices = coordinates.indices.filter { if case .categorical = coordinates[$0] { false } else { true } }
        categoricalIndices = coordinates.indices.filter { if case .categorical = coordinates[$0] { true } else { false } }
        levels = gaussianIndices.map { if case .discrete(let k) = coordinates[$0] { k } else { 0 } }
        choices = categoricalIndices.map { if case .categorical(let k) = coordinates[$0] { k } else { 0 } }
        precondition(mean.count == gaussianIndices.count, "mean has \(mean.count) coordinates, the Gaussian part \(gaussianIndices.count)")
        precondition(choices.allSatisfy { $0 >= 2 } && levels.allSatisfy { $0 == 0 || $0 >= 2 }, "a coordinate with fewer than 2 values")
        let n = gaussianIndices.count
        p = CMAParameters(n: max(1, n), lambda: lambda)
        let discreteCount = levels.filter { $0 > 0 }.count
        let alpha = discreteCount + choices.count > 0 ? 1 - pow(0.73, 1 / Double(discreteCount + choices.count)) : 0
        self.alpha = alpha
        qMin = choices.map { alpha / Double($0 - 1) }
        sigma0 = sigma
        self.mean = mean
        self.sigma = sigma
        C = (0..<(n * n)).map { $0 / n == $0 % n ? 1 : 0 }
        pSigma = Array(repeating: 0, count: n)
        pc = Array(repeating: 0, count: n)
        A = Array(repeating: 1, count: n)
        B = C
        D = Array(repeating: 1, count: n)
        mutationRate = Array(repeating: 0.5 - Self.epsilon, count: n)
        mutated = Array(repeating: false, count: n)
        q = choices.map { Array(repeating: 1 / Double($0), count: $0) }
        path = Array(repeating: 0, count: choices.map { $0 - 1 }.reduce(0, +))
    }

    var n: Int { gaussianIndices.count }

    // MARK: Discrete values

    /// The value (cell centre) of the i-th of k.
    @inline(__always) static func level(_ i: Int, of k: Int) -> Double { (Double(i) + 0.5) / Double(k) }

    /// The threshold between the i-th and (i+1)-th of k values.
    @inline(__always) static func threshold(_ i: Int, of k: Int) -> Double { (level(i, of: k) + level(i + 1, of: k)) / 2 }

    /// The index of the first threshold not below v (so v on a threshold takes the lower value).
    static func position(_ v: Double, k: Int) -> Int {
        var i = 0
        while i < k - 1, threshold(i, of: k) < v { i += 1 }
        return i
    }

    /// The value that v rounds to.
    static func round(_ v: Double, k: Int) -> Double { level(position(v, k: k), of: k) }

    // MARK: Sampling

    /// One sample: the raw point (Gaussian coordinates as drawn, categoricals as the index of the
    /// choice) and the point to evaluate (continuous coordinates clipped to [0, 1], discrete ones
    /// on their values, categoricals at their choice's cell centre).
    func sample(_ rng: inout SeededGenerator) -> (raw: [Double], evaluated: [Double]) {
        sample(&rng, categoricalUniforms: nil)
    }

    /// The sample of member `index` of a generation, its categorical choices stratified across the
    /// generation: for each categorical, the λ members share λ points, one in each λ-th of [0, 1)
    /// (at a common random offset, dealt to the members in a random order), and a member's choice
    /// is where its point falls among the cumulative probabilities. Each member's choice still has
    /// the probabilities q (so the update's expectation is unchanged), but a generation tries each
    /// choice about λ·q times rather than by chance. The order of the points is `shared`'s, so that
    /// each member's sample can be drawn on its own.
    func sample(_ rng: inout SeededGenerator, member index: Int, shared: SeededGenerator) -> (raw: [Double], evaluated: [Double]) {
        guard !choices.isEmpty, index < p.lambda else { return sample(&rng) }
        var shared = shared
        let lambda = p.lambda
        let uniforms = choices.map { _ -> Double in
            let offset = shared.unit()
            var slices = Array(0..<lambda)
            slices.shuffle(using: &shared)
            return (Double(slices[index]) + offset) / Double(lambda)
        }
        return sample(&rng, categoricalUniforms: uniforms)
    }

    private func sample(_ rng: inout SeededGenerator, categoricalUniforms: [Double]?) -> (raw: [Double], evaluated: [Double]) {
        var raw = [Double](repeating: 0, count: coordinates.count)
        var evaluated = raw
        if n > 0 {
            let z = (0..<n).map { j in D[j] * rng.nextGaussian() }
            for i in 0..<n {
                var s = 0.0
                for j in 0..<n { s += B[i * n + j] * z[j] }
                let v = mean[i] + sigma * A[i] * s
                let index = gaussianIndices[i]
                raw[index] = v
                evaluated[index] = levels[i] > 0 ? Self.round(v, k: levels[i]) : min(1, max(0, v))
            }
        }
        for (c, index) in categoricalIndices.enumerated() {
            let u = categoricalUniforms?[c] ?? rng.unit()
            var cumulative = 0.0, choice = choices[c] - 1
            for (i, probability) in q[c].enumerated() {
                cumulative += probability
                if u < cumulative { choice = i; break }
            }
            raw[index] = Double(choice)
            evaluated[index] = Self.level(choice, of: choices[c])
        }
        return (raw, evaluated)
    }

    // MARK: Update

    /// Updates the distribution from one generation: λ raw samples and their values (lower is
    /// better; ties keep their order).
    mutating func tell(_ solutions: [(x: [Double], f: Double)]) {
        precondition(solutions.count == p.lambda, "told \(solutions.count) solutions, population is \(p.lambda)")
        let lambda = p.lambda
        var order = solutions.indices.sorted { (solutions[$0].f, $0) < (solutions[$1].f, $1) }
        let values = order.map { solutions[$0].f }
        var v = order.map { i in gaussianIndices.map { solutions[i].x[$0] } }
        // Continuous coordinates outside [0, 1] were evaluated clipped; the ranking adds a penalty
        // for the distance, so that the mean does not drift outside (Hansen et al. 2009).
        if levels.contains(0) {
            let penalties = boxPenalties(v, sortedValues: values)
            let rank = order.indices.sorted { (values[$0] + penalties[$0], $0) < (values[$1] + penalties[$1], $1) }
            order = rank.map { order[$0] }
            v = rank.map { v[$0] }
        }
        generation += 1
        if n > 0 {
            valueHistory.append((values[0], values[lambda - 1]))
            if valueHistory.count > historyLength { valueHistory.removeFirst(valueHistory.count - historyLength) }
            if levels.contains(where: { $0 > 0 }) { centreIntegers(&v) }
            updateGaussian(v)
            if levels.contains(where: { $0 > 0 }) { applyMargin() }
        }
        if !choices.isEmpty {
            // A choice read back from a history is an index; anything else counts as the first choice.
            let selected = order.prefix(p.mu).map { i in
                zip(categoricalIndices, choices).map { index, k in
                    let x = solutions[i].x[index]
                    return x.isFinite ? min(max(Int(x.rounded()), 0), k - 1) : 0
                }
            }
            updateCategorical(selected)
        }
    }

    /// Penalties of the ranked samples `v` for leaving the box on continuous coordinates, scaled by
    /// the median interquartile range of recent generations.
    private mutating func boxPenalties(_ v: [[Double]], sortedValues f: [Double]) -> [Double] {
        let lambda = p.lambda
        let range = f[3 * lambda / 4] - f[lambda / 4]
        if range.isFinite, range > 0 {
            interquartileRanges.insert(range, at: 0)
        } else if range == .infinity, interquartileRanges.count > 1, let largest = interquartileRanges.max() {
            interquartileRanges.insert(largest, at: 0)
        }
        if interquartileRanges.count > 20 + Int((3 * Double(n) / Double(lambda)).rounded(.up)) { interquartileRanges.removeLast() }
        guard !interquartileRanges.isEmpty else { return Array(repeating: 0, count: lambda) }
        let sortedRanges = interquartileRanges.sorted(), middle = sortedRanges.count / 2
        let scale = sortedRanges.count % 2 == 1 ? sortedRanges[middle] : (sortedRanges[middle - 1] + sortedRanges[middle]) / 2
        let diagonal = (0..<n).map { C[$0 * n + $0] * A[$0] }
        var weights = Array(repeating: 2 * scale / (sigma * sigma * diagonal.reduce(0, +)), count: n)
        let reach = max(1, Double(n).squareRoot() / p.muEff)
        let meanLog = diagonal.map(log).reduce(0, +) / Double(n)
        for j in 0..<n where levels[j] == 0 {
            let outside = mean[j] < 0 ? -mean[j] : mean[j] > 1 ? mean[j] - 1 : 0
            if outside > 3 * sigma * diagonal[j].squareRoot() * reach {
                weights[j] *= pow(1.1, max(1, p.muEff / (10 * Double(n))))
            }
            weights[j] /= exp(0.9 * (log(diagonal[j]) - meanLog))
        }
        return v.map { x in
            var penalty = 0.0
            for j in 0..<n where levels[j] == 0 {
                let distance = x[j] < 0 ? -x[j] : x[j] > 1 ? x[j] - 1 : 0
                penalty += weights[j] * distance * distance
            }
            return penalty
        }
    }

    /// Integer centring: among the selected samples, a discrete coordinate that left m_j's value is
    /// moved onto its new value, and those that stayed are moved toward their value as far as
    /// needed to cancel the bias that the first move put on the mean. Notes which coordinates moved.
    private mutating func centreIntegers(_ v: inout [[Double]]) {
        let old = v
        let discrete = (0..<n).filter { levels[$0] > 0 }
        var up = [Double](repeating: 0, count: n), down = up, bias = up
        mutated = Array(repeating: false, count: n)
        for i in 0..<p.mu {
            for j in discrete {
                let k = levels[j]
                let value = Self.round(old[i][j], k: k)
                if value != Self.round(mean[j], k: k) {
                    mutated[j] = true
                    v[i][j] = value
                } else {
                    let shift = value - old[i][j]
                    if shift > 0 { up[j] += shift } else if shift < 0 { down[j] += shift }
                }
                bias[j] += v[i][j] - old[i][j]
            }
        }
        var factor = [Double](repeating: 0, count: n)
        for j in discrete {
            for moves in [up[j], down[j]] where bias[j] * moves < 0 { factor[j] = min(1, -bias[j] / moves) }
        }
        for i in 0..<p.mu {
            for j in discrete {
                let k = levels[j]
                let shift = Self.round(old[i][j], k: k) - old[i][j]
                if bias[j] * shift < 0, Self.round(v[i][j], k: k) == Self.round(mean[j], k: k) {
                    v[i][j] += factor[j] * shift
                }
            }
        }
    }

    private mutating func updateGaussian(_ v: [[Double]]) {
        // y = (x − m)/σ with x = (v − m)/A + m, evaluated in that order (as the reference does).
        let y = v.map { s in (0..<n).map { j in ((s[j] - mean[j]) / A[j] + mean[j] - mean[j]) / sigma } }
        p.update(ranked: y, generation: generation, B: B, D: D, mean: &mean, sigma: &sigma, C: &C, pSigma: &pSigma, pc: &pc)
        updateEigen()
        // Keep the smallest variance from vanishing.
        if let dMin = D.min() { sigma = max(sigma, (1e-30 / dMin).squareRoot()) }
    }

    /// Eigendecomposition of the symmetrized C; a negative eigenvalue becomes ε, and C is rebuilt
    /// from the decomposition.
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
        D = eigen.values.map { ($0 < 0 ? Self.epsilon : $0).squareRoot() }
        for a in 0..<n {
            for b in 0..<n {
                var s = 0.0
                for k in 0..<n { s += B[a * n + k] * D[k] * D[k] * B[b * n + k] }
                C[a * n + b] = s
            }
        }
    }

    // MARK: Margin

    /// √χ²₁ quantile of 1 − 2p, that is Φ⁻¹(1 − p).
    private static func tail(_ p: Double) -> Double { -Normal.quantile(p) }

    /// Keeps every discrete coordinate able to move: the probability of leaving m_j's value stays
    /// at least α (split between the two sides for an inner value), and while no selected sample
    /// left it, at most what it was.
    private mutating func applyMargin() {
        let eps = Self.epsilon
        for j in 0..<n where levels[j] > 0 {
            let k = levels[j]
            let m = mean[j]
            let position = Self.position(m, k: k)
            let low = Self.threshold(min(max(position - 1, 0), k - 2), of: k)
            let up = Self.threshold(min(position, k - 2), of: k)
            let deviation = sigma * C[j * n + j].squareRoot()
            let scale = deviation * A[j]
            var lowCDF = Normal.cdf((low - m) / scale)
            var upCDF = 1 - Normal.cdf((up - m) / scale)
            var midCDF = 1 - (lowCDF + upCDF)
            if max(lowCDF, upCDF) > 0.5 || low == up {
                // m_j's value is an end value (or m_j is across a threshold): set the mutation
                // probability by placing m_j at the right distance from the threshold.
                let sign: Double = m > up ? 1 : m < up ? -1 : 0
                var rate = max(min(lowCDF, upCDF), alpha)
                if !mutated[j] { rate = min(rate, mutationRate[j]) }
                rate = min(max(rate, eps), 0.5 - eps)
                let lowerA = abs(Self.round(m, k: k) - up) / (deviation * Self.tail(alpha))
                A[j] = max(A[j], lowerA)
                mean[j] = up + sign * deviation * A[j] * Self.tail(rate)
                mutationRate[j] = rate
            } else {
                lowCDF = max(lowCDF, alpha / 2)
                upCDF = max(upCDF, alpha / 2)
                var excess: Double
                if mutated[j] {
                    excess = (1 - lowCDF - upCDF - midCDF) / (lowCDF + upCDF + midCDF - 3 * alpha / 2)
                } else {
                    midCDF = max(midCDF, 1 - mutationRate[j])
                    excess = (1 - lowCDF - upCDF - midCDF) / (lowCDF + upCDF + midCDF - alpha - (1 - mutationRate[j]))
                }
                if !excess.isFinite { excess = 0 }
                lowCDF = min(max(lowCDF + excess * (lowCDF - alpha / 2), eps), 0.5 - eps)
                upCDF = min(max(upCDF + excess * (upCDF - alpha / 2), eps), 0.5 - eps)
                let chiLow = Self.tail(lowCDF), chiUp = Self.tail(upCDF)
                A[j] = (up - low) / ((chiLow + chiUp) * deviation)
                mean[j] = (low * chiUp + up * chiLow) / (chiLow + chiUp)
                mutationRate[j] = lowCDF + upCDF
            }
        }
    }

    // MARK: Categorical update

    /// One ASNG step on the categorical distributions from the selected samples' choices (best
    /// first), then the margin: every choice keeps at least its minimum probability.
    private mutating func updateCategorical(_ selected: [[Int]]) {
        var gradient = q.map { row in row.map { _ in 0.0 } }
        for (rank, sample) in selected.enumerated() {
            let w = p.weights[rank]
            for c in 0..<choices.count {
                for i in 0..<choices[c] { gradient[c][i] += w * ((sample[c] == i ? 1 : 0) - q[c][i]) }
            }
        }
        // The gradient in the metric of the Fisher information's square root (Akimoto et al. 2019, Appendix B).
        var scaled: [Double] = []
        for c in 0..<choices.count {
            let k = choices[c]
            let last = q[c][k - 1]
            let sum = gradient[c].prefix(k - 1).reduce(0, +)
            for i in 0..<(k - 1) {
                let root = q[c][i].squareRoot()
                scaled.append(gradient[c][i] / root + root * sum / (last + last.squareRoot()))
            }
        }
        let norm = scaled.map { $0 * $0 }.reduce(0, +).squareRoot()
        let step = delta / (norm + Self.epsilon)
        for c in 0..<choices.count { for i in 0..<choices[c] { q[c][i] += step * gradient[c][i] } }

        delta = trustRegion0 / bigDelta
        let beta = delta / Double(path.count).squareRoot()
        let pathFactor = (beta * (2 - beta)).squareRoot() / (norm > 0 ? norm : 1)
        for i in path.indices { path[i] = (1 - beta) * path[i] + pathFactor * scaled[i] }
        gamma = (1 - beta) * (1 - beta) * gamma + beta * (2 - beta)
        bigDelta *= exp(beta * (gamma - path.map { $0 * $0 }.reduce(0, +) / signalToNoise))

        for c in 0..<choices.count {
            let floor = qMin[c]
            var row = q[c].map { max($0, floor) }
            let total = row.reduce(0, +)
            let spare = total - floor * Double(choices[c])
            if spare > 0 { row = row.map { $0 - (total - 1) * ($0 - floor) / spare } }
            let sum = row.reduce(0, +)
            q[c] = row.map { $0 / sum }
        }
    }

    // MARK: Termination

    /// Generations of recent history the flat-range stop test looks at.
    var historyLength: Int { 10 + Int((30 * Double(n) / Double(p.lambda)).rounded(.up)) }

    /// Why this run should end, once it should: the tests of CMA-ES on the Gaussian part (a space of
    /// categoricals alone never stops).
    var stopReason: String? {
        guard n > 0 else { return nil }
        if generation > historyLength, valueHistory.count >= historyLength {
            let values = valueHistory.flatMap { [$0.best, $0.worst] }
            if let lo = values.min(), let hi = values.max(), hi - lo < 1e-12 { return "tolfun" }
        }
        let tolx = 1e-12 * sigma0
        if (0..<n).allSatisfy({ sigma * C[$0 * n + $0] < tolx && sigma * pc[$0] < tolx }) { return "tolx" }
        if let dMax = D.max(), sigma * dMax > 1e4 { return "tolxup" }
        if (0..<n).contains(where: { mean[$0] == mean[$0] + 0.2 * sigma * C[$0 * n + $0].squareRoot() }) { return "noeffectcoord" }
        let axis = generation % n
        if (0..<n).allSatisfy({ mean[$0] == mean[$0] + 0.1 * sigma * D[axis] * B[$0 * n + axis] }) { return "noeffectaxis" }
        if let dMax = D.max(), let dMin = D.min(), dMin > 0, dMax / dMin > 1e14 { return "conditioncov" }
        return nil
    }
}

// MARK: Checkpoint

extension CatCMAState {
    /// Writes what `tell` has changed (the rest follows from the coordinates, λ and σ0, which
    /// whoever restores it knows).
    func encode(into writer: inout StateWriter) {
        writer.gaussian(mean, C, pSigma, pc, A, B, D)
        writer.doubles(mutationRate)
        writer.int(mutated.count)
        for flag in mutated { writer.bool(flag) }
        writer.doubles(interquartileRanges)
        writer.valueHistory(valueHistory)
        for row in q { writer.doubles(row) }
        for value in [sigma, delta, bigDelta, gamma] { writer.double(value) }
        writer.doubles(path)
        writer.int(generation)
    }

    /// Reads back what `encode(into:)` wrote into a state made with the same coordinates, λ and
    /// σ0; throws when a length does not fit them.
    mutating func restore(from reader: inout StateReader) throws(StateReader.Malformed) {
        (mean, C, pSigma, pc, A, B, D) = try reader.gaussian(dimension: n)
        mutationRate = try reader.doubles(count: n)
        guard try reader.int() == n else { throw StateReader.Malformed() }
        mutated = try (0..<n).map { _ throws(StateReader.Malformed) in try reader.bool() }
        interquartileRanges = try reader.doubles()
        guard interquartileRanges.count <= 21 + Int((3 * Double(n) / Double(p.lambda)).rounded(.up)) else { throw StateReader.Malformed() }
        valueHistory = try reader.valueHistory(limit: historyLength)
        q = try choices.map { k throws(StateReader.Malformed) in try reader.doubles(count: k) }
        sigma = try reader.double()
        delta = try reader.double()
        bigDelta = try reader.double()
        gamma = try reader.double()
        path = try reader.doubles(count: path.count)
        generation = try reader.int(in: 0...Int.max)
    }
}
