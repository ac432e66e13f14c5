import ArgumentParser
import Foundation
import Knob
import Store

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List experiments, newest first.")

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var outputOptions: OutputOptions

    struct Row: Encodable {
        var name: String
        var status: String
        var reason: String
        var trials: Int
        var bestTrialName: String?
        var bestObjective: Double?
        var objective: String
        var createdAt: Date
    }

    func run() async throws {
        try await reportingErrors {
            let store = try homeOptions.knobHome.openExistingStore()
            var rows: [Row] = []
            for experiment in try await store.experiments() {
                let counts = try await store.trialCounts(of: experiment.id!)
                let best = try await store.optimalTrial(of: experiment)
                rows.append(Row(name: experiment.name, status: experiment.status.rawValue, reason: experiment.reason,
                                trials: counts.values.reduce(0, +), bestTrialName: best?.name, bestObjective: best?.objectiveValue,
                                objective: "\(experiment.objectiveType) \(experiment.objectiveMetricName)", createdAt: experiment.createdAt))
            }
            if outputOptions.output == .json {
                print(try jsonText(rows))
            } else if rows.isEmpty {
                print("no experiments yet: start one with knob run -f SPEC")
            } else {
                print(table(["NAME", "STATUS", "TRIALS", "OBJECTIVE", "BEST", "AGE"], rows.map {
                    [$0.name, $0.status, String($0.trials), $0.objective,
                     $0.bestObjective.map { "\(formatValue($0))" } ?? "-", age($0.createdAt)]
                }))
            }
        }
    }
}
