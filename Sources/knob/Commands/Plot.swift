import ArgumentParser
import Foundation
import Knob
import Store

struct Plot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw an experiment's optimization history, or a trial's curve, as a text chart.",
        discussion: """
            knob plot NAME: each ended trial's objective by trial number, and the best so far. knob plot NAME TRIAL: the \
            trial's objective (or --metric) by step. The chart fits the terminal (80 columns when the output is not one).
            """)

    @Argument(help: "The experiment's name.", completion: .experimentName) var name: String
    @Argument(help: "A trial's name, e.g. mnist-3, to draw its curve.", completion: .trialName) var trial: String?
    @Option(help: ArgumentHelp("With a trial: draw this metric (default: the objective).", valueName: "metric")) var metric: String?

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if metric != nil, trial == nil { throw ValidationError("--metric draws a trial's curve: give the trial too (knob plot NAME TRIAL --metric M)") }
    }

    func run() async throws {
        try await reportingErrors {
            let source = try await DataSource.resolve(connection, home: homeOptions.knobHome)
            let view = try await source.experiment(name)
            let size = Terminal(descriptor: 1)?.size ?? (columns: 80, rows: 24)
            // The chart and its four lines of title, axis and legend, short of the terminal's last row.
            let height = max(5, min(16, size.rows - 6))
            let width = size.columns - 1
            let chart: TextChart
            let title: String
            if let trial {
                let drawn = metric ?? WatchScreen.objectiveMetric(view)
                let reports = try await Metrics.reports(source, name, trial, metric: drawn).filter { $0.value != nil }
                title = "\(trial): \(drawn) by step (\(reports.count) report\(reports.count == 1 ? "" : "s"))"
                chart = TextChart(series: [TextChart.Series(label: drawn, symbol: "•", style: .line,
                                                            points: reports.map { (Double($0.step), $0.value!) })],
                                  xLabel: "step")
            } else {
                let trials = try await source.trials(name)
                (title, chart) = Self.history(view, trials: trials)
            }
            print(fitted(title, width: width))
            print(chart.render(width: width, height: height).joined(separator: "\n"))
        }
    }

    /// Each ended trial's objective by its number, and the best so far as a step line.
    static func history(_ view: ExperimentView, trials: [TrialRecord]) -> (String, TextChart) {
        let metric = WatchScreen.objectiveMetric(view)
        let maximize = view.objective.hasPrefix("maximize")
        let valued = trials.filter { $0.objectiveValue?.isFinite == true }.sorted { $0.sequence < $1.sequence }
        var best: [(x: Double, y: Double)] = []
        for trial in valued {
            let value = trial.objectiveValue!
            let current = best.last?.y
            let better = current.map { maximize ? max($0, value) : min($0, value) } ?? value
            best.append((Double(trial.sequence), better))
        }
        let title = "\(view.name): \(view.objective) by trial (\(valued.count) of \(trials.count) trials with a value)"
        let chart = TextChart(series: [
            TextChart.Series(label: "trial's \(metric)", symbol: "•", style: .points, points: valued.map { (Double($0.sequence), $0.objectiveValue!) }),
            TextChart.Series(label: "best so far", symbol: "─", style: .steps, points: best),
        ], xLabel: "trial")
        return (title, chart)
    }
}
