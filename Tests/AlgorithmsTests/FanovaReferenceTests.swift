import Foundation
import Testing
@testable import KnobAlgorithms

/// knob's fANOVA importances against Optuna's `FanovaImportanceEvaluator` on the same trials. The two
/// forests draw their bootstraps from different generators, so the check is that knob's importances lie
/// near the mean of Optuna's over a few seeds, not that they are equal. Spaces without log-scaled
/// parameters (Optuna fits those in raw units, knob in log units, on purpose).
/// Runs when the Python that `KNOB_PYTHON` names (default `python3`) can import optuna and scikit-learn.
@Suite(.enabled(if: OptunaFanova.available, "needs a Python with optuna and scikit-learn (set KNOB_PYTHON)"))
struct FanovaReferenceTests {
    /// Optuna's importances (normalized, as `get_param_importances` gives them) per seed.
    static let script = """
        import json, sys, warnings
        warnings.filterwarnings("ignore")
        import optuna
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        case = json.load(open(sys.argv[1]))
        def distribution(p):
            if p["kind"] == "double": return FloatDistribution(p["low"], p["high"])
            if p["kind"] == "int": return IntDistribution(int(p["low"]), int(p["high"]))
            return CategoricalDistribution(p["choices"])
        distributions = {p["name"]: distribution(p) for p in case["parameters"]}
        study = optuna.create_study()
        for params, value in case["trials"]:
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value))
        seeds, trees = int(sys.argv[2]), int(sys.argv[3])
        print(json.dumps([get_param_importances(study, evaluator=FanovaImportanceEvaluator(n_trees=trees, seed=s)) for s in range(seeds)]))
        """

    /// Optuna's mean importance of each parameter over `seeds` forests of `trees` trees (3 of 16: as many
    /// trees as one default forest, in the time Optuna takes for one).
    static func optuna(_ space: SearchSpace, _ trials: [ScoredAssignment], seeds: Int = 3, trees: Int = 16) async throws -> [String: Double] {
        let parameters: [[String: Any]] = space.parameters.map { parameter in
            switch parameter.kind {
            case .double(let min, let max, _, _): return ["name": parameter.name, "kind": "double", "low": min, "high": max]
            case .int(let min, let max, _, _): return ["name": parameter.name, "kind": "int", "low": min, "high": max]
            case .discrete(let list), .categorical(let list): return ["name": parameter.name, "kind": "categorical", "choices": list]
            }
        }
        let rows: [[Any]] = trials.map { trial in
            var params: [String: Any] = [:]
            for (name, value) in trial.assignment.values {
                switch value {
                case .double(let x): params[name] = x
                case .int(let n): params[name] = n
                case .string(let s): params[name] = s
                }
            }
            return [params, trial.value]
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("knob-fanova-\(UUID().uuidString).json").path
        FileManager.default.createFile(atPath: path, contents: try JSONSerialization.data(withJSONObject: ["parameters": parameters, "trials": rows]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try await runPython(["-c", script, path, String(seeds), String(trees)], interpreter: OptunaPython.path)
        try #require(result.status == 0, "\(result.stderr)")
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Double]])
        var mean: [String: Double] = [:]
        for run in runs { for (name, value) in run { mean[name, default: 0] += value / Double(runs.count) } }
        return mean
    }

    static func compare(_ space: SearchSpace, _ trials: [ScoredAssignment], tolerance: Double) async throws {
        let theirs = try await optuna(space, trials)
        let ours = FanovaImportanceEvaluator(seed: 1).evaluate(space, trials)
        for item in ours {
            let reference = try #require(theirs[item.name])
            #expect(abs(item.importance - reference) < tolerance, "\(item.name): knob \(item.importance), Optuna \(reference)\nknob \(ours)\nOptuna \(theirs)")
        }
    }

    @Test func sixDoublesOfWhichTwoMatter() async throws {
        try await Self.compare(FanovaImportanceTests.space, FanovaImportanceTests.trials(200, seed: 31, objective: FanovaImportanceTests.twoThatMatter),
                               tolerance: 0.05)
    }

    @Test func aCategoricalAnIntAndADoubleWithAnInteraction() async throws {
        let space = SearchSpace([
            Parameter(name: "x", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
            Parameter(name: "optimizer", kind: .categorical(["sgd", "adam", "rmsprop", "adagrad"])),
            Parameter(name: "layers", kind: .int(min: 1, max: 6, step: 1, scale: .linear)),
            Parameter(name: "noise", kind: .double(min: -1, max: 1, step: nil, scale: .linear)),
        ])
        let penalty = ["sgd": 0.0, "adam": 1.5, "rmsprop": 0.5, "adagrad": 1.0]
        var generator = SeededGenerator(seed: 17)
        let trials = (0..<200).map { _ in
            let a = space.sample(at: (0..<4).map { _ in generator.unit() })
            let x = a["x"]!.numericValue!, layers = a["layers"]!.numericValue!
            let value = penalty[a["optimizer"]!.description]! + 2 * x * x + 0.2 * layers + 0.5 * x * layers / 6 + 0.05 * a["noise"]!.numericValue!
            return ScoredAssignment(a, value)
        }
        try await Self.compare(space, trials, tolerance: 0.08)
    }
}

enum OptunaFanova {
    /// Whether the Python that `KNOB_PYTHON` names imports optuna and scikit-learn (which Optuna's fANOVA needs).
    static let available: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [OptunaPython.path, "-c", "import optuna, sklearn"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()
}
