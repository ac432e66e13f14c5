import ArgumentParser
import Foundation
import Knob
import Store

struct Trials: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List an experiment's trials: state, objective, parameters and why each ended.",
        discussion: """
            -o wide adds the other metrics (latest values), duration and exit code, with every digit; -o csv has those and \
            the start and end times, the reason and the whole message. -o json|yaml prints the trials as knobd's API does.
            """)

    @Argument(help: "The experiment's name.", completion: .experimentName)
    var name: String

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var outputOptions: ListOutputOptions

    func run() async throws {
        try await reportingErrors {
            let source = try await DataSource.resolve(connection, home: homeOptions.knobHome)
            let trials = try await source.trials(name)
            let metric = String(try await source.experiment(name).objective.split(separator: " ").last ?? "objective")
            let listing = Self.listing(of: trials, objectiveMetric: metric)
            let sorted = try listing.sorted(trials, by: outputOptions.sortBy)
            if try outputOptions.printData(sorted) { return }
            if trials.isEmpty, outputOptions.output != .csv {
                print("experiment \(name) has no trials yet")
                return
            }
            print(listing.render(sorted, mode: outputOptions.output.listingMode ?? .table))
        }
    }

    /// The columns for `trials`: name, state, objective, each parameter, then (wide, CSV) the other
    /// metrics, times and exit code, and why each ended.
    static func listing(of trials: [TrialRecord], objectiveMetric metric: String) -> Listing<TrialRecord> {
        let parameters = trials.first?.assignments.map(\.name) ?? []
        var otherMetrics: [String] = []
        for trial in trials {
            for summary in trial.observation where summary.name != metric && !otherMetrics.contains(summary.name) {
                otherMetrics.append(summary.name)
            }
        }
        var columns: [ListingColumn<TrialRecord>] = [
            ListingColumn("trial", "name") { .ordinal($0.name, $0.sequence) },
            ListingColumn("state") { .text($0.state.rawValue) },
            ListingColumn(metric, "objective") { .number($0.objectiveValue) },
        ]
        columns += parameters.map { parameter in ListingColumn(parameter) { .value($0.value(of: parameter) ?? "") } }
        columns += otherMetrics.map { name in
            ListingColumn(name, in: [.wide, .csv]) { trial in .number(trial.observation.first { $0.name == name }?.latest) }
        }
        columns += [
            ListingColumn("started", in: [.csv]) { .time($0.startedAt) },
            ListingColumn("completed", in: [.csv]) { .time($0.completedAt) },
            ListingColumn("duration", in: [.wide, .csv]) { trial in
                guard let start = trial.startedAt, let end = trial.completedAt else { return .duration(nil) }
                // Whole seconds of the times as printed, so that knobd's answer and the store's agree.
                return .duration(end.timeIntervalSince1970.rounded(.down) - start.timeIntervalSince1970.rounded(.down))
            },
            ListingColumn("exit-code", in: [.wide, .csv]) { .number($0.exitCode.map(Double.init)) },
            ListingColumn("reason", in: [.table, .wide]) { .text($0.state == .succeeded ? "" : summaryLine($0.message)) },
            ListingColumn("reason", in: [.csv]) { .text($0.reason) },
            ListingColumn("message", in: [.csv]) { .text($0.message) },
        ]
        return Listing(columns: columns)
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

    @Argument(help: "The experiment's name.", completion: .experimentName) var name: String
    @Argument(help: "The trial's name, e.g. mnist-3.", completion: .trialName) var trial: String
    @Option(parsing: .unconditional, help: "How many of the last output lines to show.") var lines = 20

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
