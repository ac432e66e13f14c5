import Foundation
import Testing
@testable import KnobAlgorithms

/// knob's Parzen estimators against Optuna's own (`optuna.samplers._tpe.parzen_estimator`): the same
/// observations, with Optuna's default weights (`TPEModel.optuna`; knob's default weighs good trials
/// by improvement), must give the same log-density at the same points.
/// (Among equal observations, knob gives the bandwidths in trial order; numpy's sort leaves that order
/// unspecified beyond a few observations, so the larger cases use distinct values.)
/// Runs when the Python that `KNOB_PYTHON` names (default `python3`) can import optuna; skipped otherwise.
@Suite(.enabled(if: OptunaPython.available, "needs a Python with optuna (set KNOB_PYTHON)"))
struct TPEReferenceTests {
    static let python = OptunaPython.path

    static func run(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runPython(arguments, interpreter: python)
    }

    /// Optuna's log-densities of each case's points; prints, per case, the largest difference from knob's.
    static let script = """
        import json, sys
        import numpy as np
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
        from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator, _ParzenEstimatorParameters
        from optuna.samplers._tpe.sampler import default_weights
        worst = []
        for case in json.load(open(sys.argv[1])):
            if case["kind"] == "categorical":
                dist = CategoricalDistribution(list(range(case["choices"])))
            elif case["kind"] == "int":
                dist = IntDistribution(int(case["low"]), int(case["high"]), log=case["log"], step=int(case["step"]) if not case["log"] else 1)
            else:
                dist = FloatDistribution(case["low"], case["high"], log=case["log"], step=case["step"])
            params = _ParzenEstimatorParameters(prior_weight=case["prior_weight"], consider_magic_clip=True,
                                                consider_endpoints=False, weights=default_weights, multivariate=False)
            pe = _ParzenEstimator({"x": np.array(case["observations"], dtype=float)}, {"x": dist}, params)
            optuna = pe.log_pdf({"x": np.array(case["points"], dtype=float)})
            worst.append(float(np.max(np.abs(optuna - np.array(case["knob"])))))
        print(json.dumps(worst))
        """

    /// One parameter's estimator over `observations`, evaluated by knob at `count` points drawn from it.
    static func numericCase(_ parameter: Parameter, observations: [Double], priorWeight: Double, seed: UInt64) throws -> [String: Any] {
        let suggester = try TPESuggester(context: SuggesterContext(space: SearchSpace([parameter]), settings: ["prior_weight": "\(priorWeight)"], seed: seed))
        guard case .numeric(let domain) = suggester.domains[0] else { throw SuggesterError.unsupportedSpace(parameter: parameter.name, message: "not numeric") }
        let group = observations.map { Assignment([parameter.name: domain.isGrid && parameter.kind.isInt ? .int(Int($0)) : .double($0)]) }
        let mixture = suggester.with(model: .optuna(multivariate: false)).mixture(domain, over: group)
        var rng = SeededGenerator(seed: seed)
        var points: [Double] = [], knob: [Double] = []
        for _ in 0..<60 {
            let t = mixture.sample(&rng)
            if domain.isGrid {
                let k = domain.gridIndex(atCoordinate: t), cell = domain.cell(k)
                points.append(domain.gridValue(k))
                knob.append(mixture.logMass(from: cell.lower, to: cell.upper))
            } else {
                guard let x = domain.value(atCoordinate: t).numericValue, let u = domain.coordinate(of: x) else { continue }
                points.append(x)
                knob.append(mixture.logDensity(u))
            }
        }
        let (low, high, step, log): (Double, Double, Double?, Bool) = switch parameter.kind {
        case .double(let min, let max, let step, let scale): (min, max, step, scale == .log)
        case .int(let min, let max, let step, let scale): (Double(min), Double(max), Double(step), scale == .log)
        default: (0, 0, nil, false)
        }
        return ["kind": parameter.kind.isInt ? "int" : "float", "low": low, "high": high, "step": step.map { $0 as Any } ?? NSNull(), "log": log,
                "observations": observations, "prior_weight": priorWeight, "points": points, "knob": knob]
    }

    @Test func logDensitiesMatchOptunasParzenEstimator() async throws {
        var rng = SeededGenerator(seed: 11)
        func draws(_ n: Int, _ f: () -> Double) -> [Double] { (0..<n).map { _ in f() } }
        var cases: [[String: Any]] = []
        cases.append(try Self.numericCase(Parameter(name: "x", kind: .double(min: -5, max: 10, step: nil, scale: .linear)),
                                          observations: draws(30) { -5 + 15 * rng.unit() * rng.unit() }, priorWeight: 1, seed: 1))
        cases.append(try Self.numericCase(Parameter(name: "x", kind: .double(min: 1e-4, max: 1, step: nil, scale: .log)),
                                          observations: draws(12) { exp(log(1e-4) * rng.unit()) }, priorWeight: 2, seed: 2))
        cases.append(try Self.numericCase(Parameter(name: "x", kind: .double(min: -5, max: 10, step: nil, scale: .linear)),
                                          observations: [], priorWeight: 1, seed: 3))
        cases.append(try Self.numericCase(Parameter(name: "n", kind: .int(min: 0, max: 20, step: 1, scale: .linear)),
                                          observations: draws(8) { Double(Int(21 * rng.unit())) }, priorWeight: 1, seed: 4))
        cases.append(try Self.numericCase(Parameter(name: "n", kind: .int(min: 2, max: 30, step: 4, scale: .linear)),
                                          observations: draws(5) { Double(2 + 4 * Int(8 * rng.unit())) }, priorWeight: 0.5, seed: 5))
        cases.append(try Self.numericCase(Parameter(name: "n", kind: .int(min: 1, max: 1000, step: 1, scale: .log)),
                                          observations: Array(Set(draws(60) { exp(log(1000) * rng.unit()).rounded() })).sorted().shuffled(using: &rng).prefix(40).map { $0 },
                                          priorWeight: 1, seed: 6))
        cases.append(try Self.numericCase(Parameter(name: "x", kind: .double(min: -1, max: 1, step: 0.25, scale: .linear)),
                                          observations: draws(9) { -1 + 0.25 * Double(Int(9 * rng.unit())) }, priorWeight: 1, seed: 7))
        // Categorical: knob's probabilities of every choice.
        let observed = (0..<31).map { _ in Int(4 * rng.unit() * rng.unit()) }
        let categorical = CategoricalParzenEstimator(observations: observed, observationWeights: ParzenWeights.recency(count: observed.count),
                                                     priorWeight: 0.5, choices: 4)
        cases.append(["kind": "categorical", "choices": 4, "observations": observed, "prior_weight": 0.5,
                      "points": [0, 1, 2, 3], "knob": (0..<4).map(categorical.logProbability)])

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("knob-tpe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("cases.json"), script = dir.appendingPathComponent("reference.py")
        try JSONSerialization.data(withJSONObject: cases).write(to: input)
        try Self.script.write(to: script, atomically: true, encoding: .utf8)

        let output = try await Self.run([script.path, input.path])
        let perCase = try #require(try? JSONDecoder().decode([Double].self, from: Data(output.stdout.utf8)),
                                   "the reference run exited \(output.status): \(output.stderr)")
        #expect(perCase.count == cases.count)
        #expect(perCase.allSatisfy { $0 < 1e-9 }, "knob's Parzen log-densities differ from Optuna's by \(perCase) (per case)")
    }
}

/// The Python that the reference tests run, and whether it has optuna.
enum OptunaPython {
    static let path = ProcessInfo.processInfo.environment["KNOB_PYTHON"] ?? "python3"

    static let available: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [path, "-c", "import optuna"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()
}

extension Parameter.Kind {
    var isInt: Bool {
        if case .int = self { return true }
        return false
    }
}
