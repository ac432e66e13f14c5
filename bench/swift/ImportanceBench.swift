// knob-bench importance: the time knob's fANOVA evaluator takes (forest of 64 trees, then the
// importances) on random trials of f = 10·x0² + 5·sin(3·x3) over six parameters in [-1, 1], and the
// importances it finds; with --optuna PYTHON, Optuna's FanovaImportanceEvaluator on the same trials
// beside it (that Python needs optuna and scikit-learn).
//
//   swift run -c release knob-bench importance [--trials 200,1000] [--repeats 5] [--optuna .venv/bin/python]

import Foundation
import KnobAlgorithms

enum ImportanceBench {
    static let space = SearchSpace((0..<6).map { Parameter(name: "x\($0)", kind: .double(min: -1, max: 1, step: nil, scale: .linear)) })

    static func trials(_ count: Int, seed: UInt64) -> [ScoredAssignment] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            let x = (0..<6).map { _ in generator.unit() * 2 - 1 }
            let assignment = Assignment(Dictionary(uniqueKeysWithValues: x.enumerated().map { ("x\($0.offset)", ParameterValue.double($0.element)) }))
            return ScoredAssignment(assignment, 10 * x[0] * x[0] + 5 * sin(3 * x[3]))
        }
    }

    static let optunaScript = """
        import json, sys, time, warnings
        warnings.filterwarnings("ignore")
        import optuna
        from optuna.distributions import FloatDistribution
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        rows, repeats = json.load(open(sys.argv[1])), int(sys.argv[2])
        study = optuna.create_study()
        names = [f"x{i}" for i in range(6)]
        for x, y in rows:
            study.add_trial(optuna.trial.create_trial(params=dict(zip(names, x)), value=y,
                                                      distributions={n: FloatDistribution(-1, 1) for n in names}))
        times, cpu_times = [], []
        for seed in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            result = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed))
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu)
        print(json.dumps({"seconds": sorted(times)[len(times) // 2], "cpu": sorted(cpu_times)[len(times) // 2], "importances": result}))
        """

    static func run(_ arguments: [String]) {
        var counts = [200, 1000], repeats = 5
        var python: String?
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            switch flag {
            case "--trials": counts = (rest.popFirst() ?? "").split(separator: ",").compactMap { Int($0) }
            case "--repeats": repeats = max(1, rest.popFirst().flatMap(Int.init) ?? repeats)
            case "--optuna": python = rest.popFirst()
            default:
                FileHandle.standardError.write(Data("knob-bench importance: unknown option \(flag)\n".utf8))
                exit(2)
            }
        }
        print("f = 10·x0² + 5·sin(3·x3), six parameters in [-1, 1], random trials; median of \(repeats) evaluations (64 trees); wall and CPU time")
        for count in counts {
            let data = trials(count, seed: 1)
            var times: [Double] = [], cpuTimes: [Double] = []
            var result: [ParameterImportance] = []
            for seed in 0..<repeats {
                let start = DispatchTime.now().uptimeNanoseconds, cpu = processCPUTime()
                result = FanovaImportanceEvaluator(seed: UInt64(seed)).evaluate(space, data)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                cpuTimes.append(processCPUTime() - cpu)
            }
            let ranked = result.map { "\($0.name)=\(String(format: "%.3f", $0.importance))" }.joined(separator: " ")
            print("\(count) trials  knob    \(String(format: "%8.3f", times.sorted()[times.count / 2])) s "
                + "(CPU \(String(format: "%.3f", cpuTimes.sorted()[cpuTimes.count / 2])) s)  \(ranked)")
            fflush(nil)
            guard let python else { continue }
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("knob-bench-importance-\(UUID().uuidString)")
            try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let rows: [[Any]] = data.map { trial in [(0..<6).map { trial.assignment["x\($0)"]!.numericValue! }, trial.value] }
            let path = folder.appendingPathComponent("trials.json").path
            FileManager.default.createFile(atPath: path, contents: try? JSONSerialization.data(withJSONObject: rows))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [python, "-c", optunaScript, path, String(repeats)]
            let output = Pipe()
            process.standardOutput = output
            do { try process.run() } catch {
                print("\(count) trials  optuna  cannot run \(python): \(error)")
                continue
            }
            let text = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard let answer = try? JSONSerialization.jsonObject(with: text) as? [String: Any], let seconds = answer["seconds"] as? Double,
                  let cpu = answer["cpu"] as? Double, let importances = answer["importances"] as? [String: Double] else {
                print("\(count) trials  optuna  failed (exit \(process.terminationStatus))")
                continue
            }
            let optunaRanked = importances.sorted { $0.value > $1.value }.map { "\($0.key)=\(String(format: "%.3f", $0.value))" }.joined(separator: " ")
            print("\(count) trials  optuna  \(String(format: "%8.3f", seconds)) s (CPU \(String(format: "%.3f", cpu)) s)  \(optunaRanked)")
            fflush(nil)
        }
    }
}
