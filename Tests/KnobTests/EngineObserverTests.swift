import Foundation
import Store
import Synchronization
import Testing
@testable import Knob

/// The controller tells its observer of every suggestion and every batch of output read.
@Suite struct EngineObserverTests {
    struct Seen {
        var calls = 0
        var assignments = 0
        var algorithms: Set<String> = []
        var lines = 0
        var bytes = 0
        var reports = 0
        var batches = 0
    }

    @Test func aGridExperimentsSuggestionsAndOutputAreAllTold() async throws {
        // Four trials, each printing a line with no report and a line with one: 5 + 8 bytes.
        let spec = try ExperimentSpec.parse("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: observed}
            spec:
              objective: {type: maximize, objectiveMetricName: score}
              algorithm: {algorithmName: grid}
              parallelTrialCount: 2
              maxTrialCount: 10
              parameters:
                - {name: x, parameterType: int, feasibleSpace: {min: "1", max: "4"}}
              trialTemplate:
                command: [/bin/sh, -c, "echo note; echo score=${trialParameters.x}"]
            """)
        let home = KnobHome(makeTemporaryDirectory())
        let store = try home.openStore()
        let (experiment, _) = try await Engine.prepare(specText: "", spec: spec, specDirectory: home.path, home: home, store: store, replace: false)
        let seen = Mutex(Seen())
        var controller = ExperimentController(store: store, home: home, spec: spec, runner: LocalRunner(), stop: StopSignal())
        controller.observer = EngineObserver(
            suggestion: { algorithm, duration, assignments in
                precondition(duration >= .zero)
                seen.withLock {
                    $0.calls += 1
                    $0.assignments += assignments
                    $0.algorithms.insert(algorithm)
                }
            },
            scraped: { lines, bytes, reports in
                seen.withLock {
                    $0.lines += lines
                    $0.bytes += bytes
                    $0.reports += reports
                    $0.batches += 1
                }
            })
        let final = try await controller.run(experiment)
        #expect(final.reason == "SearchSpaceExhausted")
        let result = seen.withLock { $0 }
        #expect(try await store.trials(of: experiment.id!).count == 4)
        #expect(result.algorithms == ["grid"])
        // Every trial came from a suggestion; a call gives at most parallelTrialCount of them, and the
        // last call finds the space exhausted.
        #expect(result.assignments == 4)
        #expect(result.calls >= 3, "\(result)")
        #expect(result.lines == 8 && result.bytes == 4 * 13 && result.reports == 4, "\(result)")
        // Each trial's output was read in at least one batch.
        #expect(result.batches >= 4, "\(result)")
    }
}
