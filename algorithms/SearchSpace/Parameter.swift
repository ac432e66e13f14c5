/// One tunable parameter of a search space.
///
/// Values of numeric parameters are `Double`s throughout the algorithms; an `int`
/// parameter only ever takes whole values on its step grid.
public struct Parameter: Sendable, Hashable, Codable {
    /// How a numeric range is spread between its bounds.
    public enum Scale: String, Sendable, Hashable, Codable {
        case linear
        case log
    }

    /// What values the parameter takes.
    public enum Kind: Sendable, Hashable, Codable {
        /// Any real number in `min...max`, or the points `min + k·step` when `step` is set.
        case double(min: Double, max: Double, step: Double?, scale: Scale)
        /// Whole numbers in `min...max` on a grid of `step` (1 by default).
        case int(min: Int, max: Int, step: Int, scale: Scale)
        /// One of a list of numbers, kept as written (Katib's `discrete`).
        case discrete([String])
        /// One of a list of labels.
        case categorical([String])
    }

    /// How a numeric parameter's values are drawn between its bounds, in the units of its scale
    /// (Katib's `distribution`: `uniform`/`normal` on a linear scale, `logUniform`/`logNormal` on a
    /// log scale). Lists ignore it.
    public enum Distribution: String, Sendable, Hashable, Codable {
        /// Every value of the range equally likely.
        case uniform
        /// A normal with μ = (min+max)/2 and σ = (max−min)/6, truncated to the bounds (in log units
        /// on a log scale), as Katib's hyperopt service draws `normal` and `logNormal`.
        case normal
    }

    public var name: String
    public var kind: Kind
    public var distribution: Distribution

    public init(name: String, kind: Kind, distribution: Distribution = .uniform) {
        self.name = name
        self.kind = kind
        self.distribution = distribution
    }

    private enum CodingKeys: String, CodingKey {
        case name, kind, distribution
    }

    /// Decodes a stored parameter; one stored before distributions existed is uniform.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        kind = try container.decode(Kind.self, forKey: .kind)
        distribution = try container.decodeIfPresent(Distribution.self, forKey: .distribution) ?? .uniform
    }

    /// Whether draws of this parameter follow a normal rather than a uniform distribution.
    public var isNormal: Bool {
        switch kind {
        case .double, .int: return distribution == .normal
        case .discrete, .categorical: return false
        }
    }

    /// The distribution as Katib spells it (`uniform`, `logUniform`, `normal`, `logNormal`).
    public var katibDistribution: String {
        let log: Bool
        switch kind {
        case .double(_, _, _, let scale), .int(_, _, _, let scale): log = scale == .log
        case .discrete, .categorical: log = false
        }
        switch (distribution, log) {
        case (.uniform, false): return "uniform"
        case (.uniform, true): return "logUniform"
        case (.normal, false): return "normal"
        case (.normal, true): return "logNormal"
        }
    }

    /// The values a finite parameter can take, in order; `nil` for a continuous double. Build it
    /// only for a small `cardinality`: `value(at:)` reads one value of a large one.
    public var finiteValues: [ParameterValue]? {
        guard let count = cardinality else { return nil }
        return (0..<count).map(value(at:))
    }

    /// Number of distinct values; `nil` when continuous, or when there are more than 2^53 of them
    /// (spec validation refuses such steps, so only a hand-made space gets here).
    public var cardinality: Int? {
        switch kind {
        case .double(let min, let max, let step?, _):
            let count = ((max - min) / step + 1e-9).rounded(.down) + 1
            guard count.isFinite, count >= 1, count <= 9_007_199_254_740_992 else { return nil }
            return Int(count)
        case .double:
            return nil
        case .int(let min, let max, let step, _):
            let (width, overflow) = max.subtractingReportingOverflow(min)
            guard !overflow, step > 0, width >= 0 else { return nil }
            return width / step + 1
        case .discrete(let list), .categorical(let list):
            return list.count
        }
    }

    /// The `index`-th value of a finite parameter (`0 ..< cardinality`), in order.
    public func value(at index: Int) -> ParameterValue {
        switch kind {
        case .double(let min, _, let step, _):
            return .double(gridPoint(min: min, step: step ?? 0, index: index))
        case .int(let min, _, let step, _):
            return .int(min + index * step)
        case .discrete(let list), .categorical(let list):
            return .string(list[index])
        }
    }

    /// Whether `value` is one this parameter can take.
    public func contains(_ value: ParameterValue) -> Bool {
        switch (kind, value) {
        case (.double(let min, let max, let step, _), .double(let x)):
            guard x >= min - 1e-12 * Swift.max(1, abs(min)), x <= max + 1e-12 * Swift.max(1, abs(max)) else { return false }
            guard let step else { return true }
            let k = (x - min) / step
            return abs(k - k.rounded()) < 1e-6
        case (.int(let min, let max, let step, _), .int(let x)):
            return x >= min && x <= max && (x - min) % step == 0
        case (.discrete(let list), .string(let s)), (.categorical(let list), .string(let s)):
            return list.contains(s)
        default:
            return false
        }
    }
}

/// A value assigned to one parameter.
public enum ParameterValue: Sendable, Hashable, Codable, CustomStringConvertible {
    case double(Double)
    case int(Int)
    /// A `discrete` or `categorical` choice, exactly as listed in the spec.
    case string(String)

    /// The value as a trial's command line and Katib's `parameterAssignments` show it.
    public var description: String {
        switch self {
        case .double(let x): return formatDouble(x)
        case .int(let n): return String(n)
        case .string(let s): return s
        }
    }

    /// The numeric value, when there is one.
    public var numericValue: Double? {
        switch self {
        case .double(let x): return x
        case .int(let n): return Double(n)
        case .string(let s): return Double(s)
        }
    }
}

/// Shortest text that reads back as the same double, without a trailing `.0` on whole numbers
/// that have an exact integer form (so `32.0` prints `32`, `0.1` prints `0.1`).
public func formatDouble(_ x: Double) -> String {
    if x.isFinite, x == x.rounded(), abs(x) < 1e15 {
        return String(Int64(x))
    }
    return String(describing: x)
}

/// A full set of values, one per parameter, in the search space's order.
public struct Assignment: Sendable, Hashable, Codable {
    public var values: [String: ParameterValue]

    public init(_ values: [String: ParameterValue]) {
        self.values = values
    }

    public subscript(name: String) -> ParameterValue? {
        values[name]
    }
}

/// `min + index·step`, rounded to the decimals that `min` and `step` are written with, so that
/// `0.1 + 2·0.1` is `0.3` and not `0.30000000000000004`.
public func gridPoint(min: Double, step: Double, index: Int) -> Double {
    let raw = min + Double(index) * step
    let digits = Swift.min(12, Swift.max(decimalPlaces(min), decimalPlaces(step)))
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let snapped = (raw * scale).rounded() / scale
    return abs(snapped - raw) <= abs(step) * 1e-6 ? snapped : raw
}

/// Number of digits after the point in the shortest text of `x` (0 for whole numbers).
func decimalPlaces(_ x: Double) -> Int {
    let text = String(describing: abs(x))
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        let mantissa = text[..<e]
        let exponent = Int(text[text.index(after: e)...]) ?? 0
        let fraction = mantissa.split(separator: ".").dropFirst().first?.count ?? 0
        return Swift.max(0, fraction - exponent)
    }
    guard let dot = text.firstIndex(of: ".") else { return 0 }
    let fraction = text[text.index(after: dot)...]
    return fraction == "0" ? 0 : fraction.count
}

extension Parameter.Kind {
    /// Whether this is a double with a `step`.
    var isSteppedDouble: Bool {
        if case .double(_, _, _?, _) = self { return true }
        return false
    }
}
