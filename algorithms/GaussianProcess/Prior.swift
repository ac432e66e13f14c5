// Notation: θ = (log ℓ_1..d, log s, log σ²), the Matérn kernel's lengthscales, scale and noise
// variance on the unit cube with standardized outputs. The fit maximizes log p(y | θ) + log p(θ)
// inside a box; the prior keeps a fit on a handful of trials from extreme lengthscales:
//   log ℓ_j ~ N(0, 0.5²),  log s ~ N(0, 1),  log σ² ~ N(log 10⁻⁶, 2²)   (up to constants).

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

    /// Log prior: lengthscales log-normal around 1 (log-sd 0.5: a smooth trend across the cube
    /// unless the data say otherwise), scale around 1, noise small.
    func logPrior() -> (value: Double, gradient: [Double]) {
        var value = 0.0
        var gradient: [Double] = []
        let lengthscaleSpread = 0.5
        for l in lengthscales {
            let z = log(l) / lengthscaleSpread
            value -= 0.5 * z * z
            gradient.append(-z / lengthscaleSpread)
        }
        let zs = log(scale)
        value -= 0.5 * zs * zs
        gradient.append(-zs)
        let zn = (log(noise) - log(1e-6)) / 2.0
        value -= 0.5 * zn * zn
        gradient.append(-zn / 2.0)
        return (value, gradient)
    }
}
