import KnobAlgorithms
import Foundation

/// A benchmark function: its search space, its known minimum, and its value.
struct TestFunction: Sendable {
    let name: String
    let space: SearchSpace
    let minimum: Double
    let evaluate: @Sendable (Assignment) -> Double

    init(name: String, space: SearchSpace, minimum: Double, evaluate: @escaping @Sendable (Assignment) -> Double) {
        self.name = name
        self.space = space
        self.minimum = minimum
        self.evaluate = evaluate
    }

    /// A function of doubles x0, x1, … on a box.
    init(name: String, bounds: [(Double, Double)], minimum: Double, value: @escaping @Sendable ([Double]) -> Double) {
        let space = SearchSpace(bounds.enumerated().map { i, b in
            Parameter(name: "x\(i)", kind: .double(min: b.0, max: b.1, step: nil, scale: .linear))
        })
        self.init(name: name, space: space, minimum: minimum) { assignment in
            value((0..<bounds.count).map { assignment["x\($0)"]!.numericValue! })
        }
    }

    /// The functions knob-bench runs by default (the CMA-ES, GP and TPE benchmarks).
    static let all: [TestFunction] = [branin, hartmann6, rosenbrock5, ackley10]
    /// Every function knob-bench knows, by `--functions`. `styblinski5` and `levy6` are held out of
    /// the defaults: settings chosen on the four defaults are checked on them.
    static let known: [TestFunction] = all + [mixed6, styblinski5, levy6]

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

    /// Styblinski–Tang in 5 dimensions: one global minimum at x_i ≈ −2.9035 among 2⁵ local ones.
    static let styblinski5 = TestFunction(name: "styblinski5", bounds: Array(repeating: (-5, 5), count: 5),
                                          minimum: -39.16616570377142 * 5) { x in
        0.5 * x.map { $0 * $0 * $0 * $0 - 16 * $0 * $0 + 5 * $0 }.reduce(0, +)
    }

    /// Levy in 6 dimensions: rugged, minimum 0 at x_i = 1.
    static let levy6 = TestFunction(name: "levy6", bounds: Array(repeating: (-10, 10), count: 6), minimum: 0) { x in
        let w = x.map { 1 + ($0 - 1) / 4 }
        let last = w[w.count - 1]
        var sum = pow(sin(Double.pi * w[0]), 2) + (last - 1) * (last - 1) * (1 + pow(sin(2 * Double.pi * last), 2))
        for i in 0..<(w.count - 1) { sum += (w[i] - 1) * (w[i] - 1) * (1 + 10 * pow(sin(Double.pi * w[i] + 1), 2)) }
        return sum
    }

    /// A training-run-like function over a log-scaled learning rate, a momentum, an int width and
    /// three categoricals (optimizer: 3 choices, activation: 5, initialisation: 4). Where the
    /// learning rate, momentum and width are best depends on the optimizer and the activation, and
    /// which initialisation is best depends on the activation; the learning rate and the momentum
    /// interact. Minimum 0 at adam, gelu, xavier, lr = 10⁻³, momentum 0.5, width 16. The same
    /// function is `mixed6` in bench/catcma.py.
    static let mixed6 = TestFunction(name: "mixed6", space: SearchSpace([
        Parameter(name: "lr", kind: .double(min: 1e-4, max: 1, step: nil, scale: .log)),
        Parameter(name: "momentum", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
        Parameter(name: "width", kind: .int(min: 1, max: 20, step: 1, scale: .linear)),
        Parameter(name: "optimizer", kind: .categorical(Mixed6.optimizers)),
        Parameter(name: "activation", kind: .categorical(Mixed6.activations)),
        Parameter(name: "init", kind: .categorical(Mixed6.initialisations)),
    ]), minimum: 0) { a in
        guard case .string(let optimizer)? = a["optimizer"], case .string(let activation)? = a["activation"],
              case .string(let initialisation)? = a["init"] else { return .infinity }
        return Mixed6.value(lr: a["lr"]!.numericValue!, momentum: a["momentum"]!.numericValue!, width: a["width"]!.numericValue!,
                            optimizer: Mixed6.optimizers.firstIndex(of: optimizer)!, activation: Mixed6.activations.firstIndex(of: activation)!,
                            initialisation: Mixed6.initialisations.firstIndex(of: initialisation)!)
    }
}

/// The tables of `mixed6`, by choice index.
enum Mixed6 {
    static let optimizers = ["sgd", "adam", "rmsprop"]
    static let activations = ["relu", "tanh", "sigmoid", "gelu", "elu"]
    static let initialisations = ["he", "xavier", "normal", "uniform"]
    /// Per optimizer: best log10(lr), best momentum, offset.
    static let optimizerTable: [(logLR: Double, momentum: Double, offset: Double)] = [(-1, 0.9, 0.2), (-3, 0.5, 0), (-2.5, 0.7, 0.1)]
    /// Per activation: best width, offset.
    static let activationTable: [(width: Double, offset: Double)] = [(12, 0.05), (6, 0.3), (3, 0.6), (16, 0), (9, 0.1)]
    /// Offset of each initialisation with a rectifier (relu, elu) and with the others.
    static let initialisationOffsets: (rectifier: [Double], other: [Double]) = ([0, 0.15, 0.25, 0.2], [0.15, 0, 0.25, 0.2])

    static func value(lr: Double, momentum: Double, width: Double, optimizer: Int, activation: Int, initialisation: Int) -> Double {
        let o = optimizerTable[optimizer], act = activationTable[activation]
        let t = log10(lr) - o.logLR, m = momentum - o.momentum, w = (width - act.width) / 10
        let rectifier = activation == 0 || activation == 4
        let initialisationOffset = (rectifier ? initialisationOffsets.rectifier : initialisationOffsets.other)[initialisation]
        return o.offset + act.offset + initialisationOffset + 0.25 * t * t + 2 * m * m + 0.5 * t * m + w * w
    }
}
