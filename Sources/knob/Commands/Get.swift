import ArgumentParser
import Foundation
import Knob
import Store

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show an experiment: its status, budget, trial counts, best trial and recent events.",
        discussion: """
            -o json|yaml prints Katib's Experiment object (kubeflow.org/v1beta1): metadata and spec as given (with budget edits), \
            a status with conditions, currentOptimalTrial, trial counts, startTime and completionTime; \
            knob's own view of the experiment (the API's answer) is under the key knob.
            """)

    @Argument(help: "The experiment's name.", completion: .experimentName)
    var name: String

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var outputOptions: OutputOptions

    @Option(parsing: .unconditional, help: "How many of the latest events to show.")
    var events = 10

    func validate() throws {
        guard events >= 0 else { throw ValidationError("--events takes 0 or more, found \(events)") }
    }

    func run() async throws {
        try await reportingErrors {
            let source = try await DataSource.resolve(connection, home: homeOptions.knobHome)
            if outputOptions.output != .table {
                _ = try outputOptions.printData(try await source.katibExperiment(name, events: events))
                return
            }
            print(describe(try await source.experiment(name, events: events), events: events))
        }
    }
}

/// The text `knob get` prints (and `knob watch` refreshes).
func describe(_ view: ExperimentView, events limit: Int) -> String {
    let total = view.trials.values.reduce(0, +)
    let counts = TrialState.allCases.compactMap { state in view.trials[state.rawValue].map { "\($0) \(state.rawValue)" } }.joined(separator: ", ")
    let budget = view.budget
    var lines = [
        "Name:       \(view.name)",
        "Status:     \(view.status) (\(view.reason)): \(view.message)",
        "Algorithm:  \(view.algorithm)\(view.earlyStopping.map { ", early stopping \($0)" } ?? "")",
        "Objective:  \(view.objective)\(view.goal.map { ", goal \(formatValue($0))" } ?? "")",
        "Budget:     \(budget.maxTrialCount.map(String.init) ?? "unlimited") trials, \(budget.parallelTrialCount) in parallel, "
            + (budget.maxFailedTrialCount.map { "\($0) failures allowed" } ?? "no failure limit"),
        "Trials:     \(total)\(counts.isEmpty ? "" : " (\(counts))")",
        "Created:    \(view.createdAt.formatted(.iso8601))",
    ]
    if let killed = view.trials[TrialState.killed.rawValue], killed > 0, budget.maxTrialCount != nil {
        // Katib counts them too; say so, since a stop's kills use up the budget.
        lines.insert("            \(killed) killed trial\(killed == 1 ? "" : "s") count\(killed == 1 ? "s" : "") toward maxTrialCount, as in Katib", at: 6)
    }
    let best = view.currentOptimalTrial
    if best.bestTrialName.isEmpty {
        lines.append("Best trial: none yet")
    } else {
        let metric = String(view.objective.split(separator: " ").last ?? "")
        lines.append("Best trial: \(best.bestTrialName)  \(metric)=\(view.bestObjectiveValue.map(formatValue) ?? "-")  \(assignmentText(best.parameterAssignments))")
    }
    if let events = view.events?.suffix(limit), !events.isEmpty {
        lines.append("Events:")
        lines += events.map(eventLine)
    }
    return lines.joined(separator: "\n")
}

/// An event on one line: its time, its kind and the summary of its message.
func eventLine(_ event: ExperimentView.Event) -> String {
    "  \(event.time.formatted(.iso8601))  \(event.kind.padding(toLength: 20, withPad: " ", startingAt: 0))  \(summaryLine(event.message))"
}
