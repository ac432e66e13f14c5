import Foundation
import Testing
@testable import KnobAlgorithms

/// knob's CMA-ES update against the `cmaes` library (PyPI, installed by .ci/install-deps): the same
/// samples and values, told in the same order, must give the same mean, step size and covariance.
@Suite struct CMAESReferenceTests {
    /// The reference update, replayed in Python on knob's samples; prints the largest difference.
    static let script = """
        import json, sys
        import numpy as np
        from cmaes import CMA
        rows = json.load(open(sys.argv[1]))
        n, lam = len(rows[0]["mean"]), len(rows[0]["fs"])
        opt = CMA(mean=np.full(n, 0.5), sigma=1 / 6, bounds=np.array([[0.0, 1.0]] * n), seed=0, population_size=lam)
        worst = 0.0
        for r in rows:
            opt.tell([(np.array(x), f) for x, f in zip(r["xs"], r["fs"])])
            worst = max(worst, np.max(np.abs(opt._mean - np.array(r["mean"]))), abs(opt._sigma / r["sigma"] - 1),
                        np.max(np.abs(opt._C - np.array(r["C"]).reshape(n, n))))
        print(worst)
        """

    @Test(arguments: [(2, 6), (6, 9), (10, 10)])
    func updatesMatchTheCmaesLibrary(_ shape: (n: Int, lambda: Int)) async throws {
        var state = CMAState(mean: Array(repeating: 0.5, count: shape.n), sigma: 1.0 / 6, lambda: shape.lambda,
                             cardinality: Array(repeating: 0, count: shape.n))
        var rng = SeededGenerator(seed: UInt64(shape.n))
        var rows: [[String: Any]] = []
        for _ in 0..<40 {
            let xs = (0..<shape.lambda).map { _ in state.sample(&rng).raw }
            // A rotated, multimodal function, so that every update term (negative weights, h_σ) is exercised.
            let fs = xs.map { x in
                x.enumerated().map { i, v in Double(i + 1) * (v - 0.3) * (v - 0.3) }.reduce(0, +) + 0.1 * sin(10 * x[0] + 7 * x[shape.n - 1])
            }
            state.tell(Array(zip(xs, fs)).map { (x: $0.0, f: $0.1) })
            rows.append(["xs": xs, "fs": fs, "mean": state.mean, "sigma": state.sigma, "C": state.C])
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("knob-cma-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let trace = dir.appendingPathComponent("trace.json"), script = dir.appendingPathComponent("reference.py")
        try JSONSerialization.data(withJSONObject: rows).write(to: trace)
        try Self.script.write(to: script, atomically: true, encoding: .utf8)

        let output = try await runPython([script.path, trace.path])
        let worst = try #require(Double(output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)),
                                 "the reference run exited \(output.status) (is `cmaes` installed? .ci/install-deps installs it): \(output.stderr)")
        #expect(worst < 1e-10, "knob's CMA-ES state differs from the cmaes library's by \(worst)")
    }
}
