// knob-bench: drives knob's suggesters in-process on standard test functions and prints, per
// function, the simple regret (best value so far minus the known minimum) after 25, 50 and 100
// trials over seeds — median and interquartile range — and the time per suggestion (including
// the replay of the history) around trial 100 and trial 1000. The suggester keeps its state in a
// temporary folder, as knob keeps it in the experiment's; after the last trial, the first
// suggestion of a new process is timed twice: with that folder (as a restarted knob meets it)
// and with nothing kept at all (the whole history replayed).
//
//   swift run -c release knob-bench [--algorithm cmaes] [--seeds 10] [--first-seed 0] [--trials 100]
//       [--overhead-trials 1000] [--overhead-seeds 3] [--functions branin2,...] [--pending 4] [--json] [--trace]
//       (functions: branin2, hartmann6, rosenbrock5, ackley10 by default; also mixed6, of mixed kinds)
//       [--setting NAME=VALUE]...
//   swift run -c release knob-bench importance [--optuna PYTHON]   (fANOVA importances: see ImportanceBench.swift)
//   swift run -c release knob-bench reports FILE --metrics a,b     (a log's scraping and storing apart: see ReportsBench.swift)
//
// Trials run one at a time (suggest one, evaluate it, record it, repeat), or with --pending N keeping
// N trials pending: the oldest completes, then the suggester refills the free slot knowing the others
// are pending. --trace prints every trial to standard error. --setting passes an algorithm setting, as
// a spec's `algorithmSettings` would (e.g. --setting n_candidates=2048 --setting acq_func=ucb).

import KnobAlgorithms
import Knob
import Foundation

struct Options {
    var algorithm = "cmaes"
    var seeds = 10
    var firstSeed = 0
    var trials = 100
    var overheadTrials = 1000
    var overheadSeeds = 3
    var json = false
    /// Trials kept pending at a time (0: one at a time, each completed before the next is asked).
    var pending = 0
    /// Prints every trial of seed 0 (value, best so far, suggester metadata) to standard error.
    var trace = false
    var functions = TestFunction.all.map(\.name)
    /// The algorithm's settings, by name.
    var settings: [String: String] = [:]

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        while let flag = rest.popFirst() {
            switch flag {
            case "--algorithm": algorithm = rest.popFirst() ?? algorithm
            case "--seeds": seeds = rest.popFirst().flatMap(Int.init) ?? seeds
            case "--first-seed": firstSeed = rest.popFirst().flatMap(Int.init) ?? firstSeed
            case "--trials": trials = rest.popFirst().flatMap(Int.init) ?? trials
            case "--overhead-trials": overheadTrials = rest.popFirst().flatMap(Int.init) ?? overheadTrials
            case "--overhead-seeds": overheadSeeds = rest.popFirst().flatMap(Int.init) ?? overheadSeeds
            case "--functions": functions = (rest.popFirst() ?? "").split(separator: ",").map(String.init)
            case "--json": json = true
            case "--pending": pending = rest.popFirst().flatMap(Int.init) ?? pending
            case "--trace": trace = true
            case "--setting":
                let text = rest.popFirst() ?? ""
                guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                    FileHandle.standardError.write(Data("--setting takes NAME=VALUE, found \"\(text)\"\n".utf8))
                    exit(2)
                }
                settings[String(text[..<equals])] = String(text[text.index(after: equals)...])
            default:
                FileHandle.standardError.write(Data("unknown option \(flag)\n".utf8))
                exit(2)
            }
        }
    }
}

/// What one run of a suggester on a function gives.
struct RunResult {
    /// Best value among the first k + 1 completed trials, for each k.
    var best: [Double]
    /// Wall-clock and process CPU seconds per suggestion, in the order they were made.
    var seconds: [Double]
    var cpuSeconds: [Double]
    /// The first suggestion of a new process after the run, with the state folder the run left
    /// (as a restarted knob makes it), and with nothing kept (median of a few).
    var cold: Double
    var fullReplay: Double
    /// Assignments proposed more than once.
    var duplicates: Int
}

func processCPUTime() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// Runs `trials` trials. With `pending` > 0, that many trials are kept pending: the suggester is
/// asked for enough to fill the slots, then the oldest pending trial completes, and so on.
func run(_ function: TestFunction, algorithm: String, settings: [String: String] = [:], seed: UInt64, trials: Int, pending: Int = 0,
         trace: Bool = false) throws -> RunResult {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("knob-bench-\(getpid())-\(seed)").path
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let context = SuggesterContext(space: function.space, settings: settings, seed: seed, stateStore: SuggesterStateFolder(path: folder))
    let suggester = try SuggesterRegistry.make(algorithm, context: context)
    var history = History()
    var result = RunResult(best: [], seconds: [], cpuSeconds: [], cold: 0, fullReplay: 0, duplicates: 0)
    var seen = Set<[String]>()
    var bestSoFar = Double.infinity
    var running: [Int] = []
    var completed = 0
    let slots = max(1, pending)
    while completed < trials {
        let wanted = min(slots - running.count, trials - history.trials.count)
        if wanted > 0 {
            let start = DispatchTime.now().uptimeNanoseconds, cpu = processCPUTime()
            let next = try suggester.suggest(count: wanted, history: history)
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, elapsedCPU = processCPUTime() - cpu
            for suggestion in next {
                result.seconds.append(elapsed / Double(next.count))
                result.cpuSeconds.append(elapsedCPU / Double(next.count))
                if !seen.insert(function.space.key(suggestion.assignment)).inserted { result.duplicates += 1 }
                running.append(history.trials.count)
                history.trials.append(.init(assignment: suggestion.assignment, outcome: .pending, metadata: suggestion.metadata))
            }
            if next.isEmpty && running.isEmpty { break }
        }
        guard !running.isEmpty else { break }
        let index = running.removeFirst()
        let trial = history.trials[index]
        let value = function.evaluate(trial.assignment)
        history.trials[index].outcome = .completed(value)
        completed += 1
        bestSoFar = min(bestSoFar, value)
        result.best.append(bestSoFar)
        if trace {
            let x = function.space.encode(trial.assignment).map { String(format: "%.3f", $0) }.joined(separator: " ")
            let metadata = trial.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            let line = String(format: "s%d %4d %10.5f %10.5f  ", Int(seed), completed, value, bestSoFar) + "[\(x)] \(metadata)\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
    // A new process: a new suggester, nothing in memory.
    func firstSuggestion(_ context: SuggesterContext) throws -> Double {
        var times: [Double] = []
        for _ in 0..<5 {
            let fresh = try SuggesterRegistry.make(algorithm, context: context)
            CMAESSuggester.clearReplayCheckpoints()
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try fresh.suggest(count: 1, history: history)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return quantile(times, 0.5)
    }
    result.cold = try firstSuggestion(context)
    var bare = context
    bare.stateStore = nil
    result.fullReplay = try firstSuggestion(bare)
    return result
}

/// Linear-interpolated quantile, as NumPy's default.
func quantile(_ values: [Double], _ q: Double) -> Double {
    let sorted = values.sorted()
    let position = q * Double(sorted.count - 1)
    let lower = Int(position.rounded(.down)), upper = min(sorted.count - 1, lower + 1)
    return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
}

if CommandLine.arguments.dropFirst().first == "reports" {
    await ReportsBench.run(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}
if CommandLine.arguments.dropFirst().first == "importance" {
    ImportanceBench.run(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}
let options = Options(CommandLine.arguments)
do {
    // An unknown algorithm or a bad setting is said once, before any run.
    _ = try SuggesterRegistry.make(options.algorithm, context: SuggesterContext(space: TestFunction.branin.space, settings: options.settings, seed: 0))
} catch {
    FileHandle.standardError.write(Data("knob-bench: \(error)\n".utf8))
    exit(2)
}
let checkpoints = [25, 50, 100].filter { $0 <= options.trials }
var rows: [[String: Any]] = []
for function in TestFunction.known where options.functions.contains(function.name) {
    var regrets: [Int: [Double]] = [:]
    var duplicates = 0
    for seed in options.firstSeed..<(options.firstSeed + options.seeds) {
        let result = try run(function, algorithm: options.algorithm, settings: options.settings, seed: UInt64(seed), trials: options.trials, pending: options.pending, trace: options.trace)
        duplicates += result.duplicates
        for checkpoint in checkpoints { regrets[checkpoint, default: []].append(result.best[checkpoint - 1] - function.minimum) }
    }
    // Overhead: mean time per suggestion over trials 91–100 (491–500, 991–1000), median over seeds.
    var overhead: [Int: [Double]] = [:]
    var overheadCPU: [Int: [Double]] = [:]
    var cold: [Double] = []
    var fullReplay: [Double] = []
    for seed in 0..<options.overheadSeeds {
        let result = try run(function, algorithm: options.algorithm, settings: options.settings, seed: UInt64(1000 + seed), trials: options.overheadTrials, pending: options.pending)
        for at in [100, 500, 1000] where at <= result.seconds.count {
            overhead[at, default: []].append(result.seconds[(at - 10)..<at].reduce(0, +) / 10)
            overheadCPU[at, default: []].append(result.cpuSeconds[(at - 10)..<at].reduce(0, +) / 10)
        }
        cold.append(result.cold)
        fullReplay.append(result.fullReplay)
    }
    var row: [String: Any] = ["function": function.name, "sampler": "knob_\(options.algorithm)", "seeds": options.seeds,
                              "pending": options.pending, "duplicates": duplicates]
    for checkpoint in checkpoints {
        let r = regrets[checkpoint]!
        row["regret@\(checkpoint)"] = [quantile(r, 0.5), quantile(r, 0.25), quantile(r, 0.75)]
        row["regrets@\(checkpoint)"] = r
    }
    for (at, values) in overhead { row["overhead@\(at)"] = quantile(values, 0.5) }
    for (at, values) in overheadCPU { row["cpu@\(at)"] = quantile(values, 0.5) }
    if !cold.isEmpty {
        row["cold@\(options.overheadTrials)"] = quantile(cold, 0.5)
        row["replay@\(options.overheadTrials)"] = quantile(fullReplay, 0.5)
    }
    rows.append(row)
    if !options.json {
        let regretText = checkpoints.map { c -> String in
            let r = row["regret@\(c)"] as! [Double]
            return String(format: "@%d %.3g [%.3g, %.3g]", c, r[0], r[1], r[2])
        }.joined(separator: "  ")
        let overheadText = [100, 500, 1000].compactMap { at in (row["overhead@\(at)"] as? Double).map { String(format: "%d: %.3f ms", at, $0 * 1000) } }
            .joined(separator: ", ")
        let coldText = (row["cold@\(options.overheadTrials)"] as? Double).map { String(format: ", cold start %.2f ms", $0 * 1000) } ?? ""
        let replayText = (row["replay@\(options.overheadTrials)"] as? Double).map { String(format: " (nothing kept: %.2f ms)", $0 * 1000) } ?? ""
        let duplicateText = options.pending > 0 ? ", \(duplicates) duplicates" : ""
        print("\(function.name.padding(toLength: 12, withPad: " ", startingAt: 0)) regret \(regretText)  overhead \(overheadText)\(coldText)\(replayText)\(duplicateText)")
    }
}
if options.json {
    let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}
