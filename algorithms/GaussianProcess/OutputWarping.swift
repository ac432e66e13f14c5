// Notation: y (n values, lower is better), z = (y − mean)/sd, ψ_λ the Yeo–Johnson transform
//   ψ_λ(z) = ((z + 1)^λ − 1)/λ            for z ≥ 0   (log(z + 1) when λ = 0)
//   ψ_λ(z) = −((1 − z)^(2−λ) − 1)/(2 − λ)  for z < 0   (−log(1 − z) when λ = 2),
// monotone in z for every λ. λ maximizes the profile log-likelihood of ψ_λ(z) being normal,
//   ℓ(λ) = −(n/2)·log var(ψ_λ(z)) + (λ − 1)·Σ sign(z_i)·log(|z_i| + 1),
// over [0, 2]: at either end one tail is taken in by a logarithm, never more, so no range of
// values is flattened into one. The model sees w = (ψ_λ(z) − mean)/sd.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the Gaussian process is fitted to: the objective values standardized, then made closer to
/// normal by a Yeo–Johnson transform. Skewed objectives (a loss that spans orders of magnitude, an
/// accuracy bunched near its ceiling) otherwise let a few extreme values set the scale, and the
/// model sees the region that matters as flat.
struct OutputWarping: Sendable, Equatable {
    enum Kind: String, Sendable, CaseIterable {
        case yeoJohnson = "yeo-johnson"
        case standardize = "standardize"
    }

    /// The transform's exponent (1 is the identity; `nil` for plain standardization).
    let lambda: Double?
    /// The values as the model sees them, in the order given.
    let values: [Double]

    static let lambdaRange: ClosedRange<Double> = 0...2

    init(_ y: [Double], kind: Kind) {
        precondition(!y.isEmpty && y.allSatisfy(\.isFinite))
        let z = Self.standardized(y)
        guard kind == .yeoJohnson, z.count > 2 else {
            lambda = nil
            values = z
            return
        }
        let lambda = Self.maximumLikelihoodLambda(z)
        self.lambda = lambda
        values = Self.standardized(z.map { Self.transform($0, lambda: lambda) })
    }

    /// (v − mean)/sd; all zeros when the values are equal.
    static func standardized(_ v: [Double]) -> [Double] {
        let mean = v.reduce(0, +) / Double(v.count)
        let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count)
        let sd = variance.squareRoot()
        guard sd > 1e-12 * max(1, abs(mean)) else { return Array(repeating: 0, count: v.count) }
        return v.map { ($0 - mean) / sd }
    }

    /// ψ_λ(z).
    static func transform(_ z: Double, lambda: Double) -> Double {
        if z >= 0 {
            return abs(lambda) < 1e-9 ? log1p(z) : (pow(z + 1, lambda) - 1) / lambda
        }
        let p = 2 - lambda
        return abs(p) < 1e-9 ? -log1p(-z) : -(pow(1 - z, p) - 1) / p
    }

    /// ℓ(λ), the profile log-likelihood.
    static func logLikelihood(_ z: [Double], lambda: Double) -> Double {
        var sum = 0.0, sumSquares = 0.0, jacobian = 0.0
        for value in z {
            let t = transform(value, lambda: lambda)
            sum += t
            sumSquares += t * t
            jacobian += value >= 0 ? log1p(value) : -log1p(-value)
        }
        let n = Double(z.count)
        let variance = max(1e-300, sumSquares / n - (sum / n) * (sum / n))
        return -0.5 * n * log(variance) + (lambda - 1) * jacobian
    }

    /// The λ of `lambdaRange` with the highest ℓ, by golden-section search (ℓ is unimodal in λ
    /// for these data in practice; the ends are compared too, so a maximum there is found exactly).
    static func maximumLikelihoodLambda(_ z: [Double]) -> Double {
        let ratio = (5.0.squareRoot() - 1) / 2
        var lo = lambdaRange.lowerBound, hi = lambdaRange.upperBound
        var a = hi - ratio * (hi - lo), b = lo + ratio * (hi - lo)
        var fa = logLikelihood(z, lambda: a), fb = logLikelihood(z, lambda: b)
        while hi - lo > 1e-4 {
            if fa < fb {
                lo = a; a = b; fa = fb
                b = lo + ratio * (hi - lo); fb = logLikelihood(z, lambda: b)
            } else {
                hi = b; b = a; fb = fa
                a = hi - ratio * (hi - lo); fa = logLikelihood(z, lambda: a)
            }
        }
        let inside = (lo + hi) / 2
        return [lambdaRange.lowerBound, inside, lambdaRange.upperBound].max { logLikelihood(z, lambda: $0) < logLikelihood(z, lambda: $1) }!
    }
}
