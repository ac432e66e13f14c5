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
