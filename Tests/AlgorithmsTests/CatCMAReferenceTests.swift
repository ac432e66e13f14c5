import Foundation
import Testing
@testable import KnobAlgorithms

/// knob's CatCMA with margin against the `cmaes` library's `CatCMAwM` (PyPI, installed by
/// .ci/install-deps): the same raw samples and values, told in the same order, must give the same
/// Gaussian (mean, step size, covariance, margin scaling) and the same categorical distributions.
///
/// Every discrete coordinate of a case has the same number of values: the library pads shorter
/// value lists with their last value, which moves its margin's thresholds for those coordinates.
@Suite struct CatCMAReferenceTests {
    /// The reference update, replayed in Python on knob's samples; prints the largest difference of
    /// each part, as JSON.
    static let script = """
        import json, sys, warnings
        import numpy as np
        from cmaes import CatCMAwM
        warnings.simplefilter("ignore")
        case = json.load(open(sys.argv[1]))
        nc, nz, k, K, lam = case["continuous"], case["discrete"], case["levels"], case["choices"], case["lambda"]
        nmi = nc + nz
        opt = CatCMAwM(x_space=[[0.0, 1.0]] * nc or None, z_space=[[(i + 0.5) / k for i in range(k)]] * nz or None,
                       c_space=K or None, population_size=lam, seed=0,
                       mean=np.full(nmi, 0.5) if nmi else None, sigma=1 / 6 if nmi else None, cov=np.eye(nmi) if nmi else None)
        worst = {"mean": 0.0, "sigma": 0.0, "C": 0.0, "A": 0.0, "q": 0.0}
        for r in case["rows"]:
            told = []
            for v, c, f in zip(r["v"], r["c"], r["fs"]):
                onehot = np.zeros((len(K), max(K))) if K else None
                for i, choice in enumerate(c):
                    onehot[i, choice] = 1
                told.append((CatCMAwM.Solution(c=onehot, _v_raw=np.array(v) if nmi else None), f))
            opt.tell(told)
            if nmi:
                worst["mean"] = max(worst["mean"], float(np.max(np.abs(opt._mean - np.array(r["mean"])))))
                worst["sigma"] = max(worst["sigma"], abs(opt._sigma / r["sigma"] - 1))
                worst["C"] = max(worst["C"], float(np.max(np.abs(opt._C - np.array(r["C"]).reshape(nmi, nmi)))))
                worst["A"] = max(worst["A"], float(np.max(np.abs(opt._A / np.array(r["A"]) - 1))))
            for i, row in enumerate(r["q"]):
                worst["q"] = max(worst["q"], float(np.max(np.abs(opt._q[i, :len(row)] - np.array(row)))))
        print(json.dumps(worst))
        """

    struct Case: Sendable, CustomTestStringConvertible {
        var continuous: Int
        var discrete: Int
        var levels: Int
        var choices: [Int]
        var lambda: Int
        var testDescription: String { "\(continuous) continuous, \(discrete)×\(levels) discrete, choices \(choices), λ \(lambda)" }
    }

    @Test(arguments: [
        Case(continuous: 2, discrete: 2, levels: 5, choices: [3, 5], lambda: 8),
        Case(continuous: 3, discrete: 0, levels: 0, choices: [4], lambda: 10),
        Case(continuous: 0, discrete: 3, levels: 3, choices: [2, 3], lambda: 7),
        Case(continuous: 0, discrete: 0, levels: 0, choices: [2, 3, 4], lambda: 6),
        Case(continuous: 1, discrete: 1, levels: 2, choices: [3], lambda: 6),
    ])
    func updatesMatchTheCmaesLibrary(_ c: Case) async throws {
        let coordinates = Array(repeating: CMACoordinate.continuous, count: c.continuous)
            + Array(repeating: .discrete(c.levels), count: c.discrete) + c.choices.map { .categorical($0) }
        let n = c.continuous + c.discrete
        var state = CatCMAState(coordinates: coordinates, mean: Array(repeating: 0.5, count: n), sigma: 1.0 / 6, lambda: c.lambda)
        var rng = SeededGenerator(seed: UInt64(coordinates.count * 31 + c.lambda))
        var rows: [[String: Any]] = []
        for _ in 0..<60 {
            let samples = (0..<c.lambda).map { _ in state.sample(&rng) }
            // The best point has its continuous coordinates near the upper bound (so that samples
            // leave the box and the penalty ranks them), a discrete optimum at an end value and one
            // inside, and a best choice per categorical that depends on the first coordinate.
            let fs = samples.enumerated().map { index, sample -> Double in
                let u = sample.evaluated
                var f = 0.0
                for j in 0..<c.continuous { f += Double(j + 1) * pow(u[j] - 0.97, 2) + 0.05 * sin(9 * u[j]) }
                for j in c.continuous..<n { f += abs(u[j] - (j % 2 == 0 ? 0 : 0.5)) }
                for (i, k) in c.choices.enumerated() {
                    let choice = Int(u[n + i] * Double(k))
                    let best = u.first.map { $0 > 0.5 ? k - 1 : 0 } ?? 1
                    f += choice == best ? 0 : 0.3 + 0.1 * Double(choice)
                }
                return f + 1e-7 * Double(index)  // distinct values: ties are ranked alike, but not asserted on
            }
            state.tell(zip(samples, fs).map { (x: $0.raw, f: $1) })
            rows.append([
                "v": samples.map { Array($0.raw.prefix(n)) },
                "c": samples.map { $0.raw.suffix(c.choices.count).map { Int($0) } },
                "fs": fs, "mean": state.mean, "sigma": state.sigma, "C": state.C, "A": state.A, "q": state.q,
            ])
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("knob-catcma-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("trace.json"), script = dir.appendingPathComponent("reference.py")
        let payload: [String: Any] = ["continuous": c.continuous, "discrete": c.discrete, "levels": c.levels,
                                      "choices": c.choices, "lambda": c.lambda, "rows": rows]
        try JSONSerialization.data(withJSONObject: payload).write(to: trace)
        try Self.script.write(to: script, atomically: true, encoding: .utf8)

        let output = try await runPython([script.path, trace.path])
        let data = Data(output.stdout.utf8)
        let worst = try #require((try? JSONSerialization.jsonObject(with: data)) as? [String: Double],
                                 "the reference run exited \(output.status) (is `cmaes` installed? .ci/install-deps installs it): \(output.stderr)")
        for (part, difference) in worst.sorted(by: { $0.key < $1.key }) {
            #expect(difference < 1e-10, "knob's \(part) differs from the cmaes library's by \(difference)")
        }
        // The run went where the update is tested: the categoricals learnt, the discrete margin acted.
        #expect(state.q.allSatisfy { $0.max()! > 0.6 }, "categoricals still spread: \(state.q)")
        if c.discrete > 0 { #expect(state.A.contains { $0 != 1 }, "the margin never acted") }
    }
}
