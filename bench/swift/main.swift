// knob-bench: drives knob's suggesters in-process on standard test functions and prints, per
// function, the simple regret (best value so far minus the known minimum) after 25, 50 and 100
// trials over seeds — median and interquartile range — and the time per suggestion (including
// the replay of the history) around trial 100 and trial 1000.
//
//   swift run -c release knob-bench [--algorithm cmaes] [--seeds 10] [--trials 100] [--json]
//
// Trials run one at a time: suggest one, evaluate it, record it, repeat.

import KnobAlgorithms
import Foundation

struct Options {
    var algorithm = "cmaes"
    var seeds = 10
    var trials = 100
    var overheadTrials = 1000
    var overheadSeeds = 3
    var json = false
    var functions = TestFunction.all.map(\.name)

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        while let flag = rest.popFirst() {
            switch flag {
            case "--algorithm": algorithm = rest.popFirst() ?? algorithm
            case "--seeds": seeds = rest.popFirst().flatMap(Int.init) ?? seeds
            case "--trials": trials = rest.popFirst().flatMap(Int.init) ?? trials
            case "--overhead-trials": overheadTrials = rest.popFirst().flatMap(Int.init) ?? overheadTrials
            case "--overhead-seeds": overheadSeeds = rest.popFirst().flatMap(Int.init) ?? overheadSeeds
            case "--functions": functions = (rest.popFirst() ?? "").split(separator: ",").map(String.init)
            case "--json": json = true
            default:
                FileHandle.standardError.write(Data("unknown option \(flag)\n".utf8))
                exit(2)
            }
        }
    }
}

/// Best value after each trial, the time each suggestion took, and the time the last one takes
/// with nothing cached (as the first suggestion after a restart).
func run(_ function: TestFunction, algorithm: String, seed: UInt64, trials: Int) throws -> (best: [Double], seconds: [Double], cold: Double) {
    let suggester = try SuggesterRegistry.make(algorithm, context: SuggesterContext(space: function.space, seed: seed))
    var history = History()
    var best: [Double] = []
    var seconds: [Double] = []
    var bestSoFar = Double.infinity
    while history.trials.count < trials {
        let start = DispatchTime.now().uptimeNanoseconds
        let next = try suggester.suggest(count: 1, history: history)
        seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        guard let suggestion = next.first else { break }
        let value = function.evaluate(suggestion.assignment)
        history.trials.append(.init(assignment: suggestion.assignment, outcome: .completed(value), metadata: suggestion.metadata))
        bestSoFar = min(bestSoFar, value)
        best.append(bestSoFar)
    }
    CMAESSuggester.clearReplayCheckpoints()
    let start = DispatchTime.now().uptimeNanoseconds
    _ = try suggester.suggest(count: 1, history: history)
    let cold = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return (best, seconds, cold)
}

/// Linear-interpolated quantile, as NumPy's default.
func quantile(_ values: [Double], _ q: Double) -> Double {
    let sorted = values.sorted()
    let position = q * Double(sorted.count - 1)
    let lower = Int(position.rounded(.down)), upper = min(sorted.count - 1, lower + 1)
    return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
}

let options = Options(CommandLine.arguments)
let checkpoints = [25, 50, 100].filter { $0 <= options.trials }
var rows: [[String: Any]] = []
for function in TestFunction.all where options.functions.contains(function.name) {
    var regrets: [Int: [Double]] = [:]
    for seed in 0..<options.seeds {
        let result = try run(function, algorithm: options.algorithm, seed: UInt64(seed), trials: options.trials)
        for checkpoint in checkpoints { regrets[checkpoint, default: []].append(result.best[checkpoint - 1] - function.minimum) }
    }
    // Overhead: mean time per suggestion over trials 91–100 and 991–1000, median over seeds.
    var overhead: [Int: [Double]] = [:]
    var cold: [Double] = []
    for seed in 0..<options.overheadSeeds {
        let result = try run(function, algorithm: options.algorithm, seed: UInt64(1000 + seed), trials: options.overheadTrials)
        for at in [100, 1000] where at <= result.seconds.count {
            let window = result.seconds[(at - 10)..<at]
            overhead[at, default: []].append(window.reduce(0, +) / Double(window.count))
        }
        cold.append(result.cold)
    }
    var row: [String: Any] = ["function": function.name, "sampler": "knob_\(options.algorithm)", "seeds": options.seeds]
    for checkpoint in checkpoints {
        let r = regrets[checkpoint]!
        row["regret@\(checkpoint)"] = [quantile(r, 0.5), quantile(r, 0.25), quantile(r, 0.75)]
    }
    for (at, values) in overhead { row["overhead@\(at)"] = quantile(values, 0.5) }
    if !cold.isEmpty { row["cold@\(options.overheadTrials)"] = quantile(cold, 0.5) }
    rows.append(row)
    if !options.json {
        let regretText = checkpoints.map { c -> String in
            let r = row["regret@\(c)"] as! [Double]
            return String(format: "@%d %.3g [%.3g, %.3g]", c, r[0], r[1], r[2])
        }.joined(separator: "  ")
        let overheadText = [100, 1000].compactMap { at in (row["overhead@\(at)"] as? Double).map { String(format: "%d: %.3f ms", at, $0 * 1000) } }
            .joined(separator: ", ")
        let coldText = (row["cold@\(options.overheadTrials)"] as? Double).map { String(format: ", cold replay %.2f ms", $0 * 1000) } ?? ""
        print("\(function.name.padding(toLength: 12, withPad: " ", startingAt: 0)) regret \(regretText)  overhead \(overheadText)\(coldText)")
    }
}
if options.json {
    let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}
