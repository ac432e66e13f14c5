import Foundation
import Store
import Synchronization
import Testing
@testable import KnobAlgorithms
@testable import Knob

/// The controller looks again when told, not on a timer.
@Suite struct WakeupTests {
    @Test func aWakeBeforeTheWaitIsKeptAndACancelledWaitReturns() async {
        let wakeup = Wakeup()
        wakeup.wake()
        await wakeup.wait()  // returns at once: the wake came first
        let waiting = Task { await wakeup.wait() }
        try? await Task.sleep(for: .milliseconds(20))
        waiting.cancel()
        await waiting.value
    }

    @Test func anIdleControllerDoesNotLookAgainUntilTold() async throws {
        let spec = try ExperimentSpec.parse("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: woken}
            spec:
              objective: {type: maximize, objectiveMetricName: score}
              algorithm: {algorithmName: random}
              parallelTrialCount: 1
              maxTrialCount: 3
              parameters:
                - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
              trialTemplate:
                command: [/bin/sh, -c, "sleep 30; echo score=${trialParameters.x}"]
            """)
        let home = KnobHome(makeTemporaryDirectory())
        let store = try home.openStore()
        let (experiment, _) = try await Engine.prepare(specText: "", spec: spec, specDirectory: home.path, home: home, store: store, replace: false)
        let started = Mutex(0), looks = Mutex(0)
        let budget = LiveBudget(.init(maxTrialCount: 3, parallelTrialCount: 1, maxFailedTrialCount: nil))
        let stop = StopSignal()
        var controller = ExperimentController(store: store, home: home, spec: spec, runner: LocalRunner(), stop: stop, budget: budget) { event in
            if case .trialStarted = event { started.withLock { $0 += 1 } }
        }
        controller.onDecide = { looks.withLock { $0 += 1 } }
        let run = Task { try await controller.run(experiment) }
        while started.withLock({ $0 }) < 1 { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(100))
        let before = looks.withLock { $0 }
        // A second with one trial running and nothing asked: a 250 ms timer would look 4 times.
        try await Task.sleep(for: .seconds(1))
        #expect(looks.withLock { $0 } == before, "the controller looked \(looks.withLock { $0 } - before) times while idle")
        // A budget edit is applied without a trial ending.
        budget.set(.init(maxTrialCount: 3, parallelTrialCount: 2, maxFailedTrialCount: nil))
        for _ in 0..<1000 where started.withLock({ $0 }) < 2 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(started.withLock { $0 } == 2)
        // And a stop ends it, its two trials killed.
        stop.request("the test is over")
        let final = try await run.value
        #expect(final.status == .stopped)
        let trials = try await store.trials(of: experiment.id!)
        #expect(trials.map(\.state) == [.killed, .killed], "\(trials.map(\.state))")
    }
}
