import ArgumentParser
import Foundation
import Knob
import Store

/// How `knob metrics` prints: by step in a table or CSV, or each report as JSON or YAML.
enum MetricsFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, yaml, csv
}

struct Metrics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a trial's reports by step: a row per step, a column per metric.",
        discussion: """
            The table shows 6 significant digits, CSV every digit. -o json|yaml prints each report: its metric, step, \
            value (or text, for a report that was not a number) and time. knob plot NAME TRIAL draws the same curve.
            """)

    @Argument(help: "The experiment's name.", completion: .experimentName) var name: String
    @Argument(help: "The trial's name, e.g. mnist-3.", completion: .trialName) var trial: String
    @Option(help: ArgumentHelp("Only this metric.", valueName: "metric")) var metric: String?
    @Option(name: [.short, .customLong("output")], help: "Output format: table, json, yaml (the same data as json) or csv.")
    var output: MetricsFormat = .table

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            let source = try await DataSource.resolve(connection, home: homeOptions.knobHome)
            let reports = try await Self.reports(source, name, trial, metric: metric)
            switch output {
            case .json, .yaml:
                _ = try printStructured(reports.map(Report.init), as: output == .json ? .json : .yaml)
            case .table, .csv:
                if reports.isEmpty, output == .table {
                    print("trial \(trial) has reported \(metric.map { "no \($0)" } ?? "nothing") yet")
                    return
                }
                let (rows, names) = StepRow.rows(reports)
                print(StepRow.listing(metrics: names).render(rows, mode: output == .csv ? .csv : .table))
            }
        }
    }

    /// The trial's reports, of `metric` only when given; an unknown metric is an error that names the known ones.
    static func reports(_ source: DataSource, _ name: String, _ trial: String, metric: String?) async throws -> [MetricRecord] {
        let all = try await source.metrics(name, trial)
        guard let metric else { return all }
        let names = StepRow.metricNames(all)
        guard names.contains(metric) || names.isEmpty else {
            let hint = closest(metric, in: names).map { "did you mean \($0)? " } ?? ""
            throw UsageError("--metric \(metric): trial \(trial) reported no such metric; \(hint)it reported \(names.joined(separator: ", "))")
        }
        return all.filter { $0.name == metric }
    }

    /// One report as `-o json|yaml` prints it.
    struct Report: Encodable {
        var metric: String
        var step: Int
        var value: Double?
        var text: String?
        var time: Date

        init(_ record: MetricRecord) {
            metric = record.name
            step = record.step
            value = record.value
            text = record.text
            time = record.timestamp
        }
    }
}

/// The reports of one step, by metric.
struct StepRow {
    var step: Int
    var reports: [String: MetricRecord]

    /// The metrics in the order they first reported.
    static func metricNames(_ reports: [MetricRecord]) -> [String] {
        var names: [String] = []
        for report in reports where !names.contains(report.name) { names.append(report.name) }
        return names
    }

    /// A row per step, in step order; when a metric reported twice at a step, its later report.
    static func rows(_ reports: [MetricRecord]) -> (rows: [StepRow], metrics: [String]) {
        var byStep: [Int: StepRow] = [:]
        for report in reports { byStep[report.step, default: StepRow(step: report.step, reports: [:])].reports[report.name] = report }
        return (byStep.keys.sorted().map { byStep[$0]! }, metricNames(reports))
    }

    static func listing(metrics: [String]) -> Listing<StepRow> {
        Listing(columns: [ListingColumn("step") { .count($0.step) }] + metrics.map { name in
            ListingColumn(name) { row in
                guard let report = row.reports[name] else { return .number(nil) }
                return report.value.map { .number($0) } ?? .text(report.text ?? "")
            }
        })
    }
}
