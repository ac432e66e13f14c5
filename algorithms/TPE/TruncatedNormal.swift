// Notation: Φ is the standard normal cumulative distribution function, φ its density, and
// Φc(z) = 1 − Φ(z) = Φ(−z) its upper tail. Arguments are standardized: z = (x − μ) / σ.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The standard normal distribution truncated to an interval, as the Parzen estimators use it.
enum TruncatedNormal {
    /// log √(2π).
    static let logSqrtTwoPi = 0.5 * log(2 * Double.pi)

    /// log(Φ(upper) − Φ(lower)) for lower ≤ upper, accurate far out in either tail (where the
    /// plain difference would underflow to zero, an asymptotic expansion takes over).
    @inlinable static func logMass(_ lower: Double, _ upper: Double) -> Double {
        if lower > 0 { return logUpperTailMass(lower, upper) }
        if upper < 0 { return logUpperTailMass(-upper, -lower) }
        let mass = Normal.cdf(upper) - Normal.cdf(lower)
        return mass > 0 ? log(mass) : -.infinity
    }

    /// log(Φc(l) − Φc(u)) for 0 < l ≤ u (u may be +∞).
    @usableFromInline static func logUpperTailMass(_ l: Double, _ u: Double) -> Double {
        let mass = Normal.cdf(-l) - Normal.cdf(-u)
        if mass > 1e-280 { return log(mass) }
        guard u > l else { return -.infinity }
        // Φc(z) ≈ φ(z)/z for large z (Mills' ratio), so Φc(l) − Φc(u) ≈ φ(l)/l · (1 − e^{−(u²−l²)/2}·l/u).
        let ratio = u.isFinite ? exp(-0.5 * (u - l) * (u + l)) * l / u : 0
        return -0.5 * l * l - logSqrtTwoPi - log(l) + log1p(-ratio)
    }

    /// A standard normal draw conditioned on [a, b] (a ≤ b), by inversion of Φ.
    static func sample(_ a: Double, _ b: Double, _ rng: inout SeededGenerator) -> Double {
        guard a < b else { return a }
        // Invert in the lower tail, where Φ is accurate.
        if a >= 0 { return -sample(-b, -a, &rng) }
        let pa = Normal.cdf(a), pb = Normal.cdf(b)
        let p = pa + rng.unit() * (pb - pa)
        let z = Normal.quantile(Swift.min(1.0.nextDown, Swift.max(Double.leastNormalMagnitude, p)))
        return z.isNaN ? a : Swift.min(b, Swift.max(a, z))
    }
}
