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
                                + [trial.state == .succeeded ? "" : firstLine(trial.message)]
                        }))
        }
    }
}

func firstLine(_ text: String) -> String {
    text.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
}
