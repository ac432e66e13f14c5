// Notation (minimization): z = (y* − μ)/σ, EI = σ·h(z), h(z) = φ(z) + z·Φ(z). log h is computed
// without underflow far into the tail (Ament et al., "Unexpected Improvements to Expected
// Improvement", NeurIPS 2023): for z < −1, h(z) = φ(z)·(1 − |z|·√(π/2)·erfcx(|z|/√2)).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum LogEI {
    static let logSqrt2Pi = 0.5 * log(2 * Double.pi)
    static let logSqrtHalfPi = 0.5 * log(Double.pi / 2)

    /// exp(x²)·erfc(x), the scaled complementary error function, for x ≥ 0.
    static func erfcx(_ x: Double) -> Double {
        if x < 25 { return exp(x * x) * erfc(x) }
        let x2 = x * x
        return (1 / (x * Double.pi.squareRoot())) * (1 - 1 / (2 * x2) + 3 / (4 * x2 * x2) - 15 / (8 * x2 * x2 * x2))
    }

    /// log(1 − eˣ) for x < 0.
    static func log1mexp(_ x: Double) -> Double {
        x > -log(2.0) ? log(-expm1(x)) : log1p(-exp(x))
    }

    /// log h(z).
    static func logH(_ z: Double) -> Double {
        if z > -1 {
            return log(Normal.pdf(z) + z * Normal.cdf(z))
        }
        let t = log(-z * erfcx(-z / 2.0.squareRoot())) + logSqrtHalfPi
        return -0.5 * z * z - logSqrt2Pi + log1mexp(t)
    }

    /// log Φ(z).
    static func logPhi(_ z: Double) -> Double {
        if z > -5 { return log(Normal.cdf(z)) }
        return log(0.5 * erfcx(-z / 2.0.squareRoot())) - 0.5 * z * z
    }

    /// log EI and its derivatives with respect to μ and σ.
    static func value(mean: Double, sigma: Double, best: Double) -> (value: Double, dMean: Double, dSigma: Double) {
        let z = (best - mean) / sigma
        let lh = logH(z)
        // d log h / dz = Φ(z)/h(z).
        let ratio = exp(logPhi(z) - lh)
        return (log(sigma) + lh, -ratio / sigma, 1 / sigma - ratio * z / sigma)
    }
}
