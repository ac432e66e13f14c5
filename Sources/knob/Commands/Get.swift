import ArgumentParser
import Foundation
import Knob
import Store

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show an experiment: its status, trial counts, best trial and recent events.")

    @Argument(help: "The experiment's name.")
    var name: String

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var outputOptions: OutputOptions

    @Option(help: "How many of the latest events to show.")
    var events = 10

    struct Details: Encodable {
        struct Event: Encodable {
            var time: Date
            var kind: String
            var trialName: String?
            var message: String
        }

        var name: String
        var status: String
        var reason: String
        var message: String
        var algorithm: String
        var objective: String
        var createdAt: Date
        var startedAt: Date?
        var completedAt: Date?
        var trials: [String: Int]
        var currentOptimalTrial: OptimalTrial
        var events: [Event]
        var spec: String
    }

    func run() async throws {
        try await reportingErrors {
            let store = try homeOptions.knobHome.openExistingStore()
            let experiment = try await store.requireExperiment(name)
            let spec = try ExperimentSpec.parse(experiment.specText)
            let counts = try await store.trialCounts(of: experiment.id!)
            let best = try await store.optimalTrial(of: experiment)
            let recent = try await store.events(of: experiment.id!, limit: events)
            let details = Details(
                name: experiment.name, status: experiment.status.rawValue, reason: experiment.reason, message: experiment.message,
                algorithm: spec.algorithm.algorithmName, objective: "\(spec.objective.type.rawValue) \(spec.objective.objectiveMetricName)",
                createdAt: experiment.createdAt, startedAt: experiment.startedAt, completedAt: experiment.completedAt,
                trials: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
                currentOptimalTrial: OptimalTrial(best),
                events: recent.map { .init(time: $0.time, kind: $0.kind, trialName: $0.trialName, message: $0.message) },
                spec: experiment.specText)
            if outputOptions.output == .json {
                print(try jsonText(details))
                return
            }
            let total = counts.values.reduce(0, +)
            let countText = TrialState.allCases.compactMap { state in counts[state].map { "\($0) \(state.rawValue)" } }.joined(separator: ", ")
            print("""
                Name:       \(details.name)
                Status:     \(details.status) (\(details.reason)): \(details.message)
                Algorithm:  \(details.algorithm)
                Objective:  \(details.objective)\(spec.objective.goal.map { ", goal \(formatValue($0))" } ?? "")
                Budget:     \(spec.maxTrialCount.map(String.init) ?? "unlimited") trials, \(spec.parallelTrialCount) in parallel, \
                \(spec.maxFailedTrialCount.map { "\($0) failures allowed" } ?? "no failure limit")
                Trials:     \(total)\(countText.isEmpty ? "" : " (\(countText))")
                Created:    \(details.createdAt.formatted(.iso8601))
                """)
            if let best {
                print("Best trial: \(best.name)  \(spec.objective.objectiveMetricName)=\(best.objectiveValue.map(formatValue) ?? "-")  \(assignmentText(best.assignments))")
            } else {
                print("Best trial: none yet")
            }
            if !recent.isEmpty {
                print("Events:")
                for event in recent {
                    let first = event.message.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
                    print("  \(event.time.formatted(.iso8601))  \(event.kind.padding(toLength: 20, withPad: " ", startingAt: 0))  \(first)")
                }
            }
        }
    }
}
