// Notation: a point x has one coordinate per modelled parameter: the internal coordinate t of a
// float or int parameter (a grid value's own, snapped to the grid), or a categorical's choice index. Kernel i of
// the mixture is the product over parameters of that parameter's kernel i (observation i's, or the
// prior's, last), with one weight w_i for all parameters:
//   log p(x) = log Σ_i exp(log w_i + Σ_d log k_{i,d}(x_d)).
// Each parameter's kernels are those of the univariate estimators (`ParzenEstimator.swift`), with
// the bandwidths Optuna 5 uses in its multivariate estimator too: the gaps between neighbours in
// that parameter, magic-clipped.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Optuna's multivariate Parzen estimator over the non-fixed parameters of a space.
struct MultivariateParzenEstimator: Sendable {
    /// How one parameter is modelled, with its kernels.
    enum Dimension: Sendable {
        case continuous(TruncatedGaussianMixture)
        case grid(TruncatedGaussianMixture, NumericDomain)
        case categorical(CategoricalKernels)
    }

    let dimensions: [Dimension]
    /// The kernels' weights (observations first, the prior last), their logarithms and running sums.
    let weights: [Double]
    private let logWeights: [Double]
    private let cumulativeWeights: [Double]

    /// `points[j]` is observation j's coordinates (in trial order), one per domain of `domains`, which
    /// are numeric or categorical; observations weigh as Optuna's default weights say.
    /// `observationWeights` (one per point) default to Optuna's recency weights.
    init(points: [[Double]], domains: [TPEDomain], priorWeight: Double, observationWeights: [Double]? = nil) {
        let n = points.count
        let observationWeights = observationWeights ?? ParzenWeights.recency(count: n)
        var dimensions: [Dimension] = []
        for (d, domain) in domains.enumerated() {
            let column = points.map { $0[d] }
            switch domain {
            case .numeric(let numeric):
                let mixture = TruncatedGaussianMixture(observations: column, observationWeights: observationWeights,
                                                       priorWeight: priorWeight, lo: numeric.lo, hi: numeric.hi, prior: numeric.prior)
                dimensions.append(numeric.isGrid ? .grid(mixture, numeric) : .continuous(mixture))
            case .categorical(_, let count):
                dimensions.append(.categorical(CategoricalKernels(observations: column.map { Int($0) }, priorWeight: priorWeight, choices: count)))
            case .fixed:
                preconditionFailure("fixed parameters are not modelled")
            }
        }
        self.dimensions = dimensions
        weights = ParzenWeights.mixture(observationWeights, priorWeight: priorWeight)
        logWeights = weights.map { log($0) }
        var total = 0.0
        cumulativeWeights = weights.map { total += $0; return total }
    }

    var kernelCount: Int { weights.count }

    /// A joint draw: one kernel by weight, then each parameter from that kernel.
    func sample(_ rng: inout SeededGenerator) -> [Double] {
        sample(kernel: sampleKernel(&rng), &rng)
    }

    /// A kernel index drawn by weight.
    func sampleKernel(_ rng: inout SeededGenerator) -> Int {
        let u = rng.unit() * (cumulativeWeights.last ?? 1)
        var k = 0
        while k < cumulativeWeights.count - 1, cumulativeWeights[k] <= u { k += 1 }
        return k
    }

    /// A joint draw from kernel k, its numeric bandwidths multiplied by `scale`.
    func sample(kernel k: Int, scale: Double = 1, _ rng: inout SeededGenerator) -> [Double] {
        dimensions.map { dimension in
            switch dimension {
            case .continuous(let mixture):
                return mixture.sample(kernel: k, scale: scale, &rng)
            case .grid(let mixture, let domain):
                return domain.gridCoordinate(atCoordinate: mixture.sample(kernel: k, scale: scale, &rng))
            case .categorical(let kernels):
                return Double(kernels.sample(kernel: k, &rng))
            }
        }
    }

    /// log p(x): a continuous parameter counts by density, a grid or categorical one by probability.
    func logDensity(_ x: [Double]) -> Double {
        LogSumExp.ofTerms(startingAt: logWeights) { terms in
            for (dimension, value) in zip(dimensions, x) {
                switch dimension {
                case .continuous(let mixture):
                    mixture.addKernelLogDensities(at: value, to: terms)
                case .grid(let mixture, let domain):
                    let cell = domain.cell(domain.gridIndex(atCoordinate: value))
                    mixture.addKernelLogMasses(from: cell.lower, to: cell.upper, to: terms)
                case .categorical(let kernels):
                    kernels.addKernelLogProbabilities(of: Int(value), to: terms)
                }
            }
        }
    }
}
