import Foundation
import Testing
@testable import KnobAlgorithms

/// knob's multivariate Parzen estimator against Optuna's (`_ParzenEstimator` over several parameters
/// at once, as TPESampler builds it with `multivariate=True`): same observations, same log-densities.
extension TPEReferenceTests {
    static let multivariateScript = """
        import json, sys
        import numpy as np
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
        from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator, _ParzenEstimatorParameters
        from optuna.samplers._tpe.sampler import default_weights
        case = json.load(open(sys.argv[1]))
        space = {"x": FloatDistribution(-5, 10), "lr": FloatDistribution(1e-4, 1, log=True),
                 "n": IntDistribution(2, 200, step=2), "c": CategoricalDistribution([0, 1, 2])}
        params = _ParzenEstimatorParameters(prior_weight=1.0, consider_magic_clip=True, consider_endpoints=False,
                                            weights=default_weights, multivariate=True)
        pe = _ParzenEstimator({k: np.array(v, dtype=float) for k, v in case["observations"].items()}, space, params)
        optuna = pe.log_pdf({k: np.array(v, dtype=float) for k, v in case["points"].items()})
        print(json.dumps(float(np.max(np.abs(optuna - np.array(case["knob"]))))))
        """

    @Test func multivariateLogDensitiesMatchOptunas() async throws {
        let space = SearchSpace([
            Parameter(name: "x", kind: .double(min: -5, max: 10, step: nil, scale: .linear)),
            Parameter(name: "lr", kind: .double(min: 1e-4, max: 1, step: nil, scale: .log)),
            Parameter(name: "n", kind: .int(min: 2, max: 200, step: 2, scale: .linear)),
            Parameter(name: "c", kind: .categorical(["a", "b", "c"])),
        ])
        let suggester = try MultivariateTPESuggester(context: SuggesterContext(space: space, seed: 3))
        var rng = SeededGenerator(seed: 17)
        // Distinct values per numeric parameter (numpy's sort order among ties is unspecified), 30
        // trials so that older ones weigh less.
        let group = (0..<30).map { i in
            Assignment(["x": .double(-5 + 15 * rng.unit() * rng.unit()), "lr": .double(exp(log(1e-4) * rng.unit())),
                        "n": .int(2 + 2 * ((37 * i) % 99)), "c": .string(["a", "b", "c"][Int(3 * rng.unit() * rng.unit())])])
        }
        let estimator = suggester.with(model: .optuna(multivariate: true)).estimator(over: group)
        func external(_ assignment: Assignment) -> [String: Double] {
            ["x": assignment["x"]!.numericValue!, "lr": assignment["lr"]!.numericValue!, "n": assignment["n"]!.numericValue!,
             "c": Double(["a", "b", "c"].firstIndex(of: { if case .string(let s)? = assignment["c"] { s } else { "" } }())!)]
        }
        var observations: [String: [Double]] = [:], points: [String: [Double]] = [:], knob: [Double] = []
        for assignment in group { for (k, v) in external(assignment) { observations[k, default: []].append(v) } }
        for _ in 0..<50 {
            let x = estimator.sample(&rng)
            let assignment = suggester.assignment(x)
            let point = try #require(suggester.point(assignment))
            for (k, v) in external(assignment) { points[k, default: []].append(v) }
            knob.append(estimator.logDensity(point))
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("knob-mvtpe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("case.json"), script = dir.appendingPathComponent("reference.py")
        try JSONSerialization.data(withJSONObject: ["observations": observations, "points": points, "knob": knob]).write(to: input)
        try Self.multivariateScript.write(to: script, atomically: true, encoding: .utf8)
        let output = try await Self.run([script.path, input.path])
        let worst = try #require(Double(output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)),
                                 "the reference run exited \(output.status): \(output.stderr)")
        #expect(worst < 1e-9, "knob's multivariate log-densities differ from Optuna's by up to \(worst)")
    }
}
