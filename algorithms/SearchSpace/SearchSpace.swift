#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The parameters of an experiment, in spec order, and their encoding to the unit cube.
///
/// Encoding: one coordinate per parameter in [0, 1].
/// - double: linear or logarithmic position between the bounds (a stepped double is padded by
///   half a step at each end so every grid point owns an equal share of the cube);
/// - int: the same with half a step of padding, so each whole value owns an equal interval;
/// - discrete / categorical: the choice's index `i` of `k` owns `[i/k, (i+1)/k)`.
/// `decode` snaps to the nearest valid value, so `decode(encode(a)) == a` for every valid `a`.
public struct SearchSpace: Sendable, Hashable, Codable {
    public var parameters: [Parameter]

    public init(_ parameters: [Parameter]) {
        self.parameters = parameters
    }

    /// Number of coordinates in the unit-cube encoding.
    public var dimension: Int { parameters.count }

    /// Number of distinct assignments, or `nil` if any parameter is continuous (or the count
    /// overflows).
    public var cardinality: Int? {
        var total = 1
        for parameter in parameters {
            guard let count = parameter.cardinality else { return nil }
            let (product, overflow) = total.multipliedReportingOverflow(by: count)
            if overflow { return nil }
            total = product
        }
        return total
    }

    /// Whether every parameter has a value, and every value is valid for its parameter.
    public func contains(_ assignment: Assignment) -> Bool {
        assignment.values.count == parameters.count
            && parameters.allSatisfy { p in assignment[p.name].map(p.contains) ?? false }
    }

    /// The unit-cube coordinates of an assignment.
    public func encode(_ assignment: Assignment) -> [Double] {
        parameters.map { parameter in
            guard let value = assignment[parameter.name] else { return 0.5 }
            return parameter.encode(value)
        }
    }

    /// The assignment at unit-cube coordinates `point` (clipped to the cube).
    public func decode(_ point: [Double]) -> Assignment {
        precondition(point.count == parameters.count, "point has \(point.count) coordinates, space has \(parameters.count)")
        var values: [String: ParameterValue] = [:]
        for (parameter, u) in zip(parameters, point) {
            values[parameter.name] = parameter.decode(u)
        }
        return Assignment(values)
    }

    /// A key that is equal for two assignments exactly when they are the same point.
    public func key(_ assignment: Assignment) -> [String] {
        parameters.map { assignment[$0.name]?.description ?? "" }
    }
}

extension Parameter {
    /// Bounds of the encoded interval in the parameter's own (possibly log) units.
    private var encodedBounds: (lo: Double, hi: Double, log: Bool) {
        switch kind {
        case .double(let min, let max, let step, let scale):
            let pad = (step ?? 0) / 2
            if scale == .log {
                return (log(Swift.max(min - pad, min / 2)), log(max + pad), true)
            }
            return (min - pad, max + pad, false)
        case .int(let min, let max, let step, let scale):
            let pad = Double(step) / 2
            if scale == .log {
                return (log(Swift.max(Double(min) - pad, Double(min) / 2)), log(Double(max) + pad), true)
            }
            return (Double(min) - pad, Double(max) + pad, false)
        case .discrete(let list), .categorical(let list):
            return (0, Double(list.count), false)
        }
    }

    /// The unit-interval coordinate of `value`.
    public func encode(_ value: ParameterValue) -> Double {
        let (lo, hi, isLog) = encodedBounds
        let x: Double
        switch (kind, value) {
        case (.discrete(let list), .string(let s)), (.categorical(let list), .string(let s)):
            x = Double(list.firstIndex(of: s) ?? 0) + 0.5
        default:
            let v = value.numericValue ?? lo
            x = isLog ? log(v) : v
        }
        guard hi > lo else { return 0.5 }
        return Swift.min(1, Swift.max(0, (x - lo) / (hi - lo)))
    }

    /// The valid value nearest to unit-interval coordinate `u`.
    public func decode(_ u: Double) -> ParameterValue {
        let u = u.isNaN ? 0.5 : Swift.min(1, Swift.max(0, u))
        let (lo, hi, isLog) = encodedBounds
        let raw = lo + u * (hi - lo)
        let x = isLog ? exp(raw) : raw
        switch kind {
        case .double(let min, let max, let step, _):
            guard let step else { return .double(Swift.min(max, Swift.max(min, x))) }
            let last = Double((cardinality ?? 1) - 1)
            let k = Int(Swift.min(last, Swift.max(0, ((x - min) / step).rounded())))
            return .double(gridPoint(min: min, step: step, index: k))
        case .int(let min, _, let step, _):
            let last = Double((cardinality ?? 1) - 1)
            let k = Int(Swift.min(last, Swift.max(0, ((x - Double(min)) / Double(step)).rounded())))
            return .int(min + k * step)
        case .discrete(let list), .categorical(let list):
            let i = Swift.min(list.count - 1, Swift.max(0, Int(x.rounded(.down))))
            return .string(list[i])
        }
    }
}

extension SearchSpace {
    /// The assignment that the parameters' distributions give for a point `u` spread uniformly
    /// over the unit cube (a random or quasi-random point): a uniform parameter is decoded at its
    /// coordinate, a normal one at the matching quantile of its truncated normal.
    public func sample(at u: [Double]) -> Assignment {
        precondition(u.count == parameters.count, "point has \(u.count) coordinates, space has \(parameters.count)")
        return decode(zip(parameters, u).map { $0.sampleCoordinate($1) })
    }

    /// Whether every parameter is drawn uniformly (in its scale's units).
    public var isUniform: Bool { !parameters.contains(where: \.isNormal) }

    /// Throws `unsupportedSpace` for the first parameter with a `normal` or `logNormal`
    /// distribution: for algorithms that search the range rather than draw from it.
    public func requireUniform(algorithm: String) throws {
        guard let parameter = parameters.first(where: \.isNormal) else { return }
        let uniform = parameter.katibDistribution == "logNormal" ? "logUniform" : "uniform"
        throw SuggesterError.unsupportedSpace(
            parameter: parameter.name,
            message: "\(algorithm) does not draw from distribution \(parameter.katibDistribution) (parameter \(parameter.name)); "
                + "use distribution \(uniform), or an algorithm that draws from it: random or sobol")
    }
}

extension Parameter {
    /// The tails of the standard normal left out by the truncation at ±3σ.
    private static let normalTail = Normal.cdf(-3)

    /// The unit-interval coordinate at which a uniform coordinate `u` lands under this parameter's
    /// distribution: `u` itself when uniform; for a normal, the point of the encoding whose value
    /// is the `u`-quantile of the normal truncated to [min, max].
    func sampleCoordinate(_ u: Double) -> Double {
        let u = u.isNaN ? 0.5 : Swift.min(1, Swift.max(0, u))
        guard isNormal else { return u }
        let (min, max, isLog): (Double, Double, Bool)
        switch kind {
        case .double(let lo, let hi, _, let scale): (min, max, isLog) = (lo, hi, scale == .log)
        case .int(let lo, let hi, _, let scale): (min, max, isLog) = (Double(lo), Double(hi), scale == .log)
        case .discrete, .categorical: return u
        }
        let lo = isLog ? log(min) : min, hi = isLog ? log(max) : max
        guard lo.isFinite, hi.isFinite, hi > lo else { return u }
        // p stays inside [Φ(−3), Φ(3)], well within the quantile's domain (0, 1).
        let p = Self.normalTail + u * (1 - 2 * Self.normalTail)
        let z = Swift.min(3, Swift.max(-3, Normal.quantile(p)))
        let scaled = (lo + hi) / 2 + z * (hi - lo) / 6
        let value = Swift.min(max, Swift.max(min, isLog ? exp(scaled) : scaled))
        return encode(.double(value))
    }
}
