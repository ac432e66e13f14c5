import Foundation
import Testing
@testable import Store
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

/// The optimal trial the controller keeps from the ends it records, against the store's.
@Suite struct HistoryBookOptimalTests {
    func record(_ sequence: Int, _ value: Double?, state: TrialState = .succeeded) -> TrialRecord {
        TrialRecord(id: Int64(sequence), experimentId: 1, sequence: sequence, name: "t-\(sequence)", assignments: [], suggesterMetadata: [:],
                    state: state, reason: "", message: "", runnerHandle: [:], logPath: nil, logOffset: 0, observation: [],
                    objectiveValue: value, exitCode: nil, createdAt: Date())
    }

    func book(_ type: String) throws -> HistoryBook {
        let spec = try ExperimentSpec.parse("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: t}
            spec:
              objective: {type: \(type), objectiveMetricName: score}
              algorithm: {algorithmName: random}
              parameters: [{name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}]
              trialTemplate: {command: [/bin/echo, "${trialParameters.x}"]}
            """)
        return HistoryBook([], space: spec.searchSpace, objective: spec.objective)
    }

    @Test func theBestValueWinsAndTiesGoToTheEarlierTrial() throws {
        var minimizing = try book("minimize")
        var maximizing = try book("maximize")
        let trials = [record(1, nil, state: .failed), record(2, 3), record(3, 1), record(4, 1), record(5, 2), record(6, 5), record(7, 5)]
        let expected = [(nil, nil), ("t-2", "t-2"), ("t-3", "t-2"), ("t-3", "t-2"), ("t-3", "t-2"), ("t-3", "t-6"), ("t-3", "t-6")]
        for (trial, (least, most)) in zip(trials, expected) {
            minimizing.add([record(trial.sequence, nil, state: .running)])
            maximizing.add([record(trial.sequence, nil, state: .running)])
            minimizing.update(trial)
            maximizing.update(trial)
            #expect(minimizing.optimal?.name == least, "after trial \(trial.sequence)")
            #expect(maximizing.optimal?.name == most, "after trial \(trial.sequence)")
        }
        #expect(minimizing.optimalKnown && maximizing.optimalKnown)
    }

    @Test func aChangeToTheOptimalTrialItselfIsLeftToTheStore() throws {
        var book = try book("minimize")
        book.add([record(1, 2), record(2, 1)])
        #expect(book.optimal?.sequence == 2)
        book.update(record(1, 4))  // another trial's change is followed
        #expect(book.optimalKnown && book.optimal?.sequence == 2)
        book.update(record(2, 5))
        #expect(!book.optimalKnown && book.optimal == nil)
        book.setOptimal(record(1, 4))
        #expect(book.optimalKnown && book.optimal?.sequence == 1)
    }

    /// At every suggestion of a real run, one trial at a time, the best the controller last told is the store's.
    @Test func theOptimalTrialToldIsTheStoresAtEveryStep() async throws {
        for objective in ["maximize", "minimize"] {
            let spec = try ExperimentSpec.parse("""
                apiVersion: kubeflow.org/v1beta1
                kind: Experiment
                metadata: {name: best}
                spec:
                  objective: {type: \(objective), objectiveMetricName: score}
                  algorithm: {algorithmName: random, algorithmSettings: [{name: random_state, value: "3"}]}
                  parallelTrialCount: 1
                  maxTrialCount: 12
                  parameters:
                    - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
                  trialTemplate:
                    command: [/bin/sh, -c, 'case "$1" in 0.3*) exit 1;; esac; printf "score=%.1f\\n" "$1"', sh, "${trialParameters.x}"]
                """)
            let home = KnobHome(makeTemporaryDirectory())
            let store = try home.openStore()
            let (experiment, _) = try await Engine.prepare(specText: "", spec: spec, specDirectory: home.path, home: home, store: store, replace: false)
            let told = Told()
            var controller = ExperimentController(store: store, home: home, spec: spec, runner: LocalRunner(), stop: StopSignal()) { event in
                if case .trialEnded(_, let best, _) = event { told.set(best?.name ?? "none") }
            }
            let compared = Told()
            controller.onSuggest = { _ in
                guard let last = told.value else { return }
                let stored = (try? await store.optimalTrial(of: experiment))??.name ?? "none"
                compared.append(last == stored ? "same" : "told \(last), stored \(stored)")
            }
            let final = try await controller.run(experiment)
            #expect(final.status == .succeeded, "\(final.reason): \(final.message)")
            // Values of one decimal make ties likely: the earliest of the best must be the one told.
            #expect(compared.all.count == 11, "\(objective)")
            #expect(compared.all.allSatisfy { $0 == "same" }, "\(objective): \(compared.all)")
        }
    }
}

private final class Told: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String] = []
    func set(_ value: String) { lock.withLock { values.append(value) } }
    func append(_ value: String) { set(value) }
    var value: String? { lock.withLock { values.last } }
    var all: [String] { lock.withLock { values } }
}

/// What the probe saw, from the controller's task.
private final class Seen: @unchecked Sendable {
    private let lock = NSLock()
    private var steps: [(memory: History, stored: History)] = []

    func append(_ memory: History, _ stored: History) { lock.withLock { steps.append((memory, stored)) } }
    var all: [(memory: History, stored: History)] { lock.withLock { steps } }
}
