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
        let axes = try context.space.parameters.map { parameter -> GridAxis in
            if let count = parameter.cardinality { return GridAxis(parameter: parameter, count: count) }
            guard case .double(let min, let max, nil, let scale) = parameter.kind, let n = gridPoints else {
                throw SuggesterError.unsupportedSpace(
                    parameter: parameter.name,
                    message: parameter.kind.isSteppedDouble
                        ? "grid cannot count the values of this step; use a larger step"
                        : "grid needs a step for a double parameter: set feasibleSpace.step, or the algorithm setting grid_points")
            }
            return GridAxis(values: (0..<n).map { i in
                let t = Double(i) / Double(n - 1)
                return .double(scale == .log ? exp(log(min) + t * (log(max) - log(min))) : min + t * (max - min))
            })
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

/// One parameter's values along a grid: a finite parameter's own values, read one at a time
/// (an int from 0 to 10^14 is never listed), or an explicit list.
struct GridAxis: Sendable {
    private let parameter: Parameter?
    private let values: [ParameterValue]
    let count: Int

    init(parameter: Parameter, count: Int) {
        self.parameter = parameter
        self.values = []
        self.count = count
    }

    init(values: [ParameterValue]) {
        self.parameter = nil
        self.values = values
        self.count = values.count
    }

    subscript(index: Int) -> ParameterValue {
        parameter?.value(at: index) ?? values[index]
    }
}

/// The points of a Cartesian product, addressed by index (first axis slowest).
struct GridEnumerator: Sendable {
    let axes: [GridAxis]
    let names: [String]

    init(axes: [GridAxis], names: [String]) {
        self.axes = axes
        self.names = names
    }

    /// The grid of a space whose parameters are all finite.
    init(space: SearchSpace) {
        self.init(axes: space.parameters.map { GridAxis(parameter: $0, count: $0.cardinality ?? 0) }, names: space.parameters.map(\.name))
    }

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
