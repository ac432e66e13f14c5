import ArgumentParser
import Foundation
import Knob
import Store

struct Trials: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List an experiment's trials: state, objective, parameters and why each ended.")

    @Argument(help: "The experiment's name.")
    var name: String

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var outputOptions: OutputOptions

    func run() async throws {
        try await reportingErrors {
            let source = try await DataSource.resolve(connection, home: homeOptions.knobHome)
            let trials = try await source.trials(name)
            if try outputOptions.printData(trials) { return }
            if trials.isEmpty {
                print("experiment \(name) has no trials yet")
                return
            }
            let parameterNames = trials[0].assignments.map(\.name)
            let metric = String(try await source.experiment(name).objective.split(separator: " ").last ?? "objective")
            print(table(["TRIAL", "STATE", metric.uppercased()] + parameterNames.map { $0.uppercased() } + ["REASON"],
                        trials.map { trial in
                            [trial.name, trial.state.rawValue, trial.objectiveValue.map(formatValue) ?? "-"]
                                + parameterNames.map { trial.value(of: $0).map(displayValue) ?? "" }
                                + [trial.state == .succeeded ? "" : summaryLine(trial.message)]
                        }))
        }
    }
}

func firstLine(_ text: String) -> String {
    text.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
}

/// A reason on one line: its first line, and when that ends by announcing the trial's last output
/// (`exited with code 1; last output:`), the last line of that output, which usually says why.
func summaryLine(_ text: String, width: Int = 100) -> String {
    let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    guard var line = lines.first else { return "" }
    if line.hasSuffix(":"), let last = lines.dropFirst().last(where: { !$0.isEmpty }) { line += " " + last }
    return line.count > width ? String(line.prefix(width - 1)) + "…" : line
}

struct Describe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show one trial: its state and whole reason, its parameters, its metrics and the last lines of its output.")

    @Argument(help: "The experiment's name.") var name: String
    @Argument(help: "The trial's name, e.g. mnist-3.") var trial: String
    @Option(help: "How many of the last output lines to show.") var lines = 20

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        guard lines >= 0, lines <= 100_000 else { throw ValidationError("--lines takes 0 to 100000, found \(lines)") }
    }

    func run() async throws {
        try await reportingErrors {
            let source = try await DataSource.resolve(connection, home: homeOptions.knobHome)
            let record = try await source.trial(name, trial)
            if try outputOptions.printData(record) { return }
            var text = [
                "Name:       \(record.name)",
                "State:      \(record.state.rawValue) (\(record.reason))",
                "Parameters: \(record.assignments.map { "\($0.name)=\($0.value)" }.joined(separator: " "))",
            ]
            if let started = record.startedAt { text.append("Started:    \(started.formatted(.iso8601))") }
            if let ended = record.completedAt { text.append("Ended:      \(ended.formatted(.iso8601))") }
            if let code = record.exitCode { text.append("Exit code:  \(code)") }
            text.append("Metrics:" + (record.observation.isEmpty ? "    none reported" : ""))
            for metric in record.observation {
                text.append("  \(metric.name)  min \(formatValue(metric.min))  max \(formatValue(metric.max))  latest \(formatValue(metric.latest))  (\(metric.count) reports)")
            }
            text.append("Reason:")
            text += record.message.split(separator: "\n", omittingEmptySubsequences: false).map { "  \($0)" }
            let output = String(decoding: try await source.log(name, trial), as: UTF8.self)
            var outputLines = output.split(separator: "\n", omittingEmptySubsequences: false)
            if outputLines.last?.isEmpty == true { outputLines.removeLast() }
            let tail = outputLines.suffix(lines)
            text.append("Output (last \(lines) lines of knob logs \(name) \(trial)):")
            text += tail.map { "  \($0)" }
            print(text.joined(separator: "\n"))
        }
    }
}
