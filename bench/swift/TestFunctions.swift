import KnobAlgorithms
import Foundation

/// A benchmark function: its box, its known minimum, and its value.
struct TestFunction: Sendable {
    let name: String
    let bounds: [(Double, Double)]
    let minimum: Double
    let value: @Sendable ([Double]) -> Double

    var space: SearchSpace {
        SearchSpace(bounds.enumerated().map { i, b in
            Parameter(name: "x\(i)", kind: .double(min: b.0, max: b.1, step: nil, scale: .linear))
        })
    }

    func evaluate(_ assignment: Assignment) -> Double {
        value((0..<bounds.count).map { assignment["x\($0)"]!.numericValue! })
    }

    static let all: [TestFunction] = [branin, hartmann6, rosenbrock5, ackley10]

    static let branin = TestFunction(name: "branin2", bounds: [(-5, 10), (0, 15)], minimum: 0.397887) { x in
        let b = 5.1 / (4 * Double.pi * Double.pi), c = 5 / Double.pi, t = 1 / (8 * Double.pi)
        let inner = x[1] - b * x[0] * x[0] + c * x[0] - 6
        return inner * inner + 10 * (1 - t) * cos(x[0]) + 10
    }

    static let hartmann6 = TestFunction(name: "hartmann6", bounds: Array(repeating: (0, 1), count: 6), minimum: -3.322368) { x in
        let alpha = [1.0, 1.2, 3.0, 3.2]
        let a: [[Double]] = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
        let p: [[Double]] = [
            [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886], [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
            [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650], [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
        ]
        var sum = 0.0
        for i in 0..<4 {
            var inner = 0.0
            for j in 0..<6 { inner += a[i][j] * (x[j] - p[i][j]) * (x[j] - p[i][j]) }
            sum += alpha[i] * exp(-inner)
        }
        return -sum
    }

    static let rosenbrock5 = TestFunction(name: "rosenbrock5", bounds: Array(repeating: (-5, 10), count: 5), minimum: 0) { x in
        var sum = 0.0
        for i in 0..<(x.count - 1) {
            sum += 100 * pow(x[i + 1] - x[i] * x[i], 2) + pow(1 - x[i], 2)
        }
        return sum
    }

    static let ackley10 = TestFunction(name: "ackley10", bounds: Array(repeating: (-32.768, 32.768), count: 10), minimum: 0) { x in
        let n = Double(x.count)
        let squares = x.map { $0 * $0 }.reduce(0, +)
        let cosines = x.map { cos(2 * Double.pi * $0) }.reduce(0, +)
        return -20 * exp(-0.2 * (squares / n).squareRoot()) - exp(cosines / n) + 20 + M_E
    }
}
