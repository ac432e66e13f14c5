#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Katib's `grid`: the Cartesian product of every parameter's values, first parameter slowest,
/// each point suggested once; then `exhausted`.
///
/// A double needs a `step`, or the setting `grid_points` (evenly spaced points including both
/// bounds, geometrically spaced for `logUniform`). Ints step by their `step` (1 by default).
public struct GridSuggester: Suggester {
    public let space: SearchSpace
    let enumerator: GridEnumerator

    public init(context: SuggesterContext) throws {
        let reader = SettingsReader(context.settings)
        try reader.rejectUnknown(["grid_points", "random_state"], algorithm: "grid")
        let gridPoints = try reader.int("grid_points", in: 2...100_000)
        space = context.space
        let axes = try context.space.parameters.map { parameter -> [ParameterValue] in
            if let values = parameter.finiteValues { return values }
            guard case .double(let min, let max, _, let scale) = parameter.kind, let n = gridPoints else {
                throw SuggesterError.unsupportedSpace(
                    parameter: parameter.name,
                    message: "grid needs a step for a double parameter: set feasibleSpace.step, or the algorithm setting grid_points")
            }
            return (0..<n).map { i in
                let t = Double(i) / Double(n - 1)
                return .double(scale == .log ? exp(log(min) + t * (log(max) - log(min))) : min + t * (max - min))
            }
        }
        enumerator = GridEnumerator(axes: axes, names: context.space.parameters.map(\.name))
    }

    /// Number of points in the grid.
    public var size: Int { enumerator.count }

    public func suggest(count: Int, history: History) throws -> [Suggestion] {
        let used = Set(history.trials.map { space.key($0.assignment) })
        var result: [Suggestion] = []
        var index = 0
        while result.count < count, index < enumerator.count {
            let point = enumerator.point(at: index)
            if !used.contains(space.key(point)) { result.append(Suggestion(assignment: point)) }
            index += 1
        }
        if result.isEmpty { throw SuggesterError.exhausted }
        return result
    }
}

/// The points of a Cartesian product, addressed by index (first axis slowest).
struct GridEnumerator: Sendable {
    let axes: [[ParameterValue]]
    let names: [String]

    /// Number of points; `Int.max` when the product overflows.
    var count: Int {
        axes.reduce(1) { total, axis in
            let (product, overflow) = total.multipliedReportingOverflow(by: axis.count)
            return overflow ? Int.max : product
        }
    }

    func point(at index: Int) -> Assignment {
        var rest = index
        var values: [String: ParameterValue] = [:]
        for (axis, name) in zip(axes, names).reversed() {
            values[name] = axis[rest % axis.count]
            rest /= axis.count
        }
        return Assignment(values)
    }

    func all() -> [Assignment] {
        (0..<count).map(point(at:))
    }
}
