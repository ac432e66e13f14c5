import Foundation
import Store
import Testing
@testable import KnobAlgorithms
@testable import Knob

/// The controller's history in memory against the store's, at every suggestion of real runs.
@Suite struct HistoryBookTests {
    func spec(parallel: Int, algorithm: String) throws -> ExperimentSpec {
        try ExperimentSpec.parse("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: book}
            spec:
              objective: {type: maximize, objectiveMetricName: score}
              algorithm: {algorithmName: \(algorithm), algorithmSettings: [{name: random_state, value: "7"}]}
              parallelTrialCount: \(parallel)
              maxTrialCount: 14
              parameters:
                - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
                - {name: c, parameterType: categorical, feasibleSpace: {list: [a, b]}}
              trialTemplate:
                command: [/bin/sh, -c, 'case "$1" in 0.3*|0.7*) exit 1;; esac; echo score=$1', sh, "${trialParameters.x}", "${trialParameters.c}"]
            """)
    }

    /// Runs the experiment and returns, for each suggestion, the history it was made from and the
    /// store's history at that moment.
    func run(_ spec: ExperimentSpec) async throws -> [(memory: History, stored: History)] {
        let home = KnobHome(makeTemporaryDirectory())
        let store = try home.openStore()
        let (experiment, _) = try await Engine.prepare(specText: "", spec: spec, specDirectory: home.path, home: home, store: store, replace: false)
        var controller = ExperimentController(store: store, home: home, spec: spec, runner: LocalRunner(), stop: StopSignal())
        let seen = Seen()
        let probe = controller
        controller.onSuggest = { memory in
            seen.append(memory, (try? await probe.history(experiment.id!, space: spec.searchSpace)) ?? History())
        }
        let final = try await controller.run(experiment)
        #expect(final.status == .succeeded, "\(final.reason): \(final.message)")
        return seen.all
    }

    @Test func oneAtATimeTheHistoryInMemoryIsTheStoresExactly() async throws {
        let steps = try await run(try spec(parallel: 1, algorithm: "random"))
        #expect(steps.count == 14)
        for (i, step) in steps.enumerated() {
            #expect(step.memory.trials == step.stored.trials, "suggestion \(i)")
        }
        #expect(steps.last?.memory.trials.contains { $0.outcome == .failed } == true, "failed trials are in the history")
    }

    @Test func inParallelTheMemoryLagsOnlyByEndsNotYetTold() async throws {
        let steps = try await run(try spec(parallel: 3, algorithm: "cmaes"))
        #expect(!steps.isEmpty)
        for (i, step) in steps.enumerated() {
            #expect(step.memory.trials.count == step.stored.trials.count, "suggestion \(i)")
            for (memory, stored) in zip(step.memory.trials, step.stored.trials) {
                #expect(memory.assignment == stored.assignment && memory.metadata == stored.metadata, "suggestion \(i)")
                // An end recorded by a trial's follower and not yet told to the controller reads as pending.
                #expect(memory.outcome == stored.outcome || memory.outcome == .pending, "suggestion \(i)")
            }
        }
    }
}

/// What the probe saw, from the controller's task.
private final class Seen: @unchecked Sendable {
    private let lock = NSLock()
    private var steps: [(memory: History, stored: History)] = []

    func append(_ memory: History, _ stored: History) { lock.withLock { steps.append((memory, stored)) } }
    var all: [(memory: History, stored: History)] { lock.withLock { steps } }
}
