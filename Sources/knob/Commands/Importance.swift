import ArgumentParser
import Foundation
import Knob
import KnobAlgorithms
import KnobClient
import Store

struct Importance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how much each parameter matters to the objective: fANOVA over the completed trials.",
        discussion: """
            A random forest is fitted to the completed trials (Succeeded and EarlyStopped with a value of the metric); \
            each parameter's importance is its share of the variance the forest's trees explain one parameter at a time \
            (fANOVA, as Optuna's FanovaImportanceEvaluator). The importances sum to 1 (all are 0 when every trial scored the same). -o json|yaml prints what knobd's \
            GET /v1/experiments/NAME/importances answers.
            """)

    @Argument(help: "The experiment's name.", completion: .experimentName) var name: String
    @Option(help: ArgumentHelp("Another metric than the objective (one of additionalMetricNames).", valueName: "metric")) var metric: String?

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var outputOptions: OutputOptions

    func run() async throws {
        try await reportingErrors {
            let source = try await DataSource.resolve(connection, home: homeOptions.knobHome)
            let report = try await source.importances(name, metric: metric)
            if try outputOptions.printData(report) { return }
            print(Self.text(report, experiment: name))
        }
    }

    /// A line saying what was measured, then a row per parameter: its importance and a bar.
    static func text(_ report: ImportanceReport, experiment: String) -> String {
        let trials = report.trials == 1 ? "1 completed trial" : "\(report.trials) completed trials"
        guard !report.importances.isEmpty else {
            return "experiment \(experiment) has \(trials) with \(report.metric); importances need at least 2"
        }
        var lines = ["\(experiment): importance of each parameter to \(report.metric) (fANOVA over \(trials))"]
        let rows = report.importances.map { [$0.name, String(format: "%.3f", $0.importance), bar($0.importance)] }
        lines.append(table(["PARAMETER", "IMPORTANCE", ""], rows))
        if report.importances.allSatisfy({ $0.importance == 0 }) {
            lines.append("every trial scored the same \(report.metric): no parameter explains any of it")
        }
        return lines.joined(separator: "\n")
    }

    /// `fraction` of 20 cells, in eighths of a cell.
    static func bar(_ fraction: Double, width: Int = 20) -> String {
        let eighths = Int((max(0, min(1, fraction)) * Double(width * 8)).rounded())
        let partial = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"][eighths % 8]
        return String(repeating: "█", count: eighths / 8) + partial
    }
}

extension DataSource {
    /// The experiment's importances for `metric` (the objective when nil); a metric the experiment
    /// does not record is a usage error that names the ones it does.
    func importances(_ name: String, metric: String?) async throws -> ImportanceReport {
        try await naming(name) {
            switch self {
            case .daemon(let client):
                var path = "/v1/experiments/\(name)/importances"
                if let metric {
                    let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
                    path += "?metric=" + (metric.addingPercentEncoding(withAllowedCharacters: allowed) ?? metric)
                }
                do {
                    return try APIJSON.decoder.decode(ImportanceReport.self, from: try await client.request("GET", path).body)
                } catch KnobClient.ClientError.api(404, "NotFound", let message) where !message.hasPrefix("no experiment") {
                    throw UsageError("--metric \(metric ?? ""): \(message)")
                }
            case .store(let store):
                let experiment = try await store.requireExperiment(name)
                do {
                    return try ImportanceReport(experiment: experiment, trials: try await store.trials(of: experiment.id!), metric: metric)
                } catch let error as UnknownMetricError {
                    throw UsageError("--metric \(metric ?? ""): \(error)")
                }
            }
        }
    }
}
