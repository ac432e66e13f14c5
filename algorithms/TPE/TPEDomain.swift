#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the TPE models one parameter.
enum TPEDomain: Sendable {
    /// A parameter with a single possible value: nothing to model.
    case fixed(ParameterValue)
    /// A float or int parameter, modelled by truncated Gaussians in its internal coordinate.
    case numeric(NumericDomain)
    /// A `discrete` or `categorical` parameter: its choices by index.
    case categorical(indexOf: [String: Int], count: Int)

    init(_ parameter: Parameter) {
        switch parameter.kind {
        case .discrete(let list), .categorical(let list):
            if list.count <= 1 {
                self = .fixed(parameter.value(at: 0))
                return
            }
            var indexOf: [String: Int] = [:]
            for (i, choice) in list.enumerated() where indexOf[choice] == nil { indexOf[choice] = i }
            self = .categorical(indexOf: indexOf, count: list.count)
        case .double, .int:
            if let domain = NumericDomain(parameter) {
                self = .numeric(domain)
            } else if case .double(let min, _, nil, _) = parameter.kind {
                self = .fixed(.double(min))
            } else {
                self = .fixed(parameter.value(at: 0))
            }
        }
    }
}

/// A float or int parameter's internal coordinate t: the value x, or log x on a log scale. A
/// parameter on a grid (an int, or a double with `step`) owns cells of one step around each grid
/// value, as Optuna's discretized truncated Gaussians do; [lo, hi] spans those cells.
struct NumericDomain: Sendable {
    let parameter: Parameter
    let isLog: Bool
    /// Bounds of the support in the internal coordinate.
    let lo: Double
    let hi: Double
    /// The grid min + k·step, k in 0..<gridCount; gridCount is 0 for a continuous parameter.
    let gridMin: Double
    let gridStep: Double
    let gridCount: Int
    /// The continuous range (a grid's values are within it too).
    let min: Double
    let max: Double

    /// nil when the parameter takes at most one value.
    init?(_ parameter: Parameter) {
        self.parameter = parameter
        let scale: Parameter.Scale
        switch parameter.kind {
        case .double(let min, let max, let step, let s):
            (self.min, self.max, scale) = (min, max, s)
            if let step, step > 0, let count = parameter.cardinality {
                (gridMin, gridStep, gridCount) = (min, step, count)
            } else {
                (gridMin, gridStep, gridCount) = (min, 0, 0)
            }
        case .int(let min, let max, let step, let s):
            (self.min, self.max, scale) = (Double(min), Double(max), s)
            guard let count = parameter.cardinality, step > 0 else { return nil }
            (gridMin, gridStep, gridCount) = (Double(min), Double(step), count)
        case .discrete, .categorical:
            return nil
        }
        guard min.isFinite, max.isFinite, min < max, gridCount != 1 else { return nil }
        // A log scale needs positive values; a hand-made space without them is searched linearly.
        isLog = scale == .log && min > 0
        var lower = min, upper = max
        if gridCount > 0 {
            lower = gridMin - gridStep / 2
            upper = gridMin + Double(gridCount - 1) * gridStep + gridStep / 2
            if isLog { lower = Swift.max(lower, gridMin / 2) }
        }
        lo = isLog ? log(lower) : lower
        hi = isLog ? log(upper) : upper
        guard lo.isFinite, hi.isFinite, lo < hi else { return nil }
    }

    var isGrid: Bool { gridCount > 0 }

    /// The prior kernel, in the internal coordinate: Optuna's wide one, centred on the support with
    /// σ its width, for a uniform parameter; for a `normal` or `logNormal` one, Katib's normal,
    /// μ = (min+max)/2 and σ = (max−min)/6 (of the logarithms for `logNormal`), so that the prior
    /// and the first random trials draw from the distribution the spec names.
    var prior: (mu: Double, sigma: Double) {
        guard parameter.isNormal else { return (0.5 * (lo + hi), hi - lo) }
        let a = isLog ? log(min) : min, b = isLog ? log(max) : max
        return (0.5 * (a + b), (b - a) / 6)
    }

    /// The internal coordinate of a value, or nil when it has none (not finite, not positive on a
    /// log scale); grid values are first snapped to the grid.
    func coordinate(of x: Double) -> Double? {
        guard x.isFinite else { return nil }
        var x = x
        if isGrid { x = gridValue(gridIndex(of: x)) }
        if isLog {
            guard x > 0 else { return nil }
            return Swift.min(hi, Swift.max(lo, log(x)))
        }
        return Swift.min(hi, Swift.max(lo, x))
    }

    /// The nearest grid index to value x.
    func gridIndex(of x: Double) -> Int {
        let k = ((x - gridMin) / gridStep).rounded()
        guard k.isFinite else { return k == .infinity ? gridCount - 1 : 0 }
        return Int(Swift.min(Double(gridCount - 1), Swift.max(0, k)))
    }

    func gridValue(_ k: Int) -> Double {
        gridMin + Double(k) * gridStep
    }

    /// The grid index of the cell that holds internal coordinate t.
    func gridIndex(atCoordinate t: Double) -> Int {
        gridIndex(of: isLog ? exp(t) : t)
    }

    /// The internal coordinate of the grid value whose cell holds internal coordinate t.
    func gridCoordinate(atCoordinate t: Double) -> Double {
        coordinate(of: gridValue(gridIndex(atCoordinate: t))) ?? t
    }

    /// The cell of grid index k, in internal coordinates.
    func cell(_ k: Int) -> (lower: Double, upper: Double) {
        func internalCoordinate(_ x: Double) -> Double { isLog ? log(x) : x }
        let x = gridValue(k)
        let lower = k == 0 ? lo : internalCoordinate(x - gridStep / 2)
        let upper = k == gridCount - 1 ? hi : internalCoordinate(x + gridStep / 2)
        return (Swift.max(lo, lower), Swift.min(hi, upper))
    }

    /// The parameter's value at internal coordinate t (continuous) — a grid's is `value(atGridIndex:)`.
    func value(atCoordinate t: Double) -> ParameterValue {
        let x = isLog ? exp(t) : t
        return .double(Swift.min(max, Swift.max(min, x)))
    }

    func value(atGridIndex k: Int) -> ParameterValue {
        parameter.value(at: k)
    }
}
