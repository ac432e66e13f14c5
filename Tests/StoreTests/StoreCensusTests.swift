import Foundation
import GRDB
import Synchronization
import Testing
@testable import Store

@Suite struct StoreCensusTests {
    func experiment(_ name: String) -> ExperimentRecord {
        ExperimentRecord(name: name, specText: "spec", specJSON: "{}", seed: 1, objectiveType: "minimize",
                         objectiveMetricName: "loss", directory: "/tmp")
    }

    func newTrials(_ count: Int) -> [NewTrial] {
        (0..<count).map { NewTrial(assignments: [ParameterAssignment(name: "x", value: "\($0)")]) }
    }

    func summary(_ name: String, count: Int) -> MetricSummary {
        MetricSummary(name: name, min: 0, max: 1, latest: 1, count: count)
    }

    /// Sets a trial's start and end times, as if it had run that long.
    func setTimes(_ store: Store, _ trialId: Int64, started: Date?, completed: Date?) async throws {
        try await store.writer.write { db in
            try db.execute(sql: "UPDATE trial SET startedAt = ?, completedAt = ? WHERE id = ?", arguments: [started, completed, trialId])
        }
    }

    @Test func anEmptyStoreCountsNothing() async throws {
        let census = try await Store().census(durationBounds: [1, 10])
        #expect(census.experiments.isEmpty && census.trials.isEmpty && census.reports == 0)
        #expect(census.durations == StoreCensus.Buckets(bounds: [1, 10], cumulativeCounts: [0, 0], count: 0, sum: 0))
    }

    @Test func countsByStatusAndStateAndBucketsTheFinishedTrialsDurations() async throws {
        let store = try Store()
        let running = try await store.createExperiment(experiment("a"))
        try await store.markExperimentRunning(running.id!)
        let ended = try await store.createExperiment(experiment("b"))
        try await store.finishExperiment(ended.id!, status: .succeeded, reason: "GoalReached", message: "")
        _ = try await store.createExperiment(experiment("c"))

        let trials = try await store.createTrials(newTrials(6), for: running)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        // Four finished trials that ran 0.5 s, 3 s, 10 s and 100 s.
        for (trial, seconds) in zip(trials, [0.5, 3, 10, 100]) {
            try await store.finishTrial(trial.id!, TrialEnd(state: seconds < 5 ? .succeeded : .failed, reason: "", message: "",
                                                            observation: [summary("loss", count: 2), summary("accuracy", count: 1)]))
            try await setTimes(store, trial.id!, started: start, completed: start.addingTimeInterval(seconds))
        }
        // Ended without ever starting (its start failed): no duration.
        try await store.finishTrial(trials[4].id!, TrialEnd(state: .failed, reason: "StartFailed", message: ""))
        // Running, with reports so far: counted as reports, not as a duration.
        try await store.markRunning(trials[5].id!, handle: [:], logPath: "/x")
        try await store.appendReports(trials[5].id!, reports: [MetricRecord(trialId: 0, name: "loss", value: 1, text: nil, step: 1, timestamp: Date())],
                                      logOffset: 9, observation: [summary("loss", count: 1)])
        _ = try await store.createTrials(newTrials(1), for: ended)

        let census = try await store.census(durationBounds: [1, 5, 60])
        #expect(census.experiments == [.running: 1, .succeeded: 1, .created: 1])
        #expect(census.trials == [.succeeded: 2, .failed: 3, .running: 1, .pending: 1])
        #expect(census.durations.cumulativeCounts == [1, 2, 3])
        #expect(census.durations.count == 4)
        #expect(abs(census.durations.sum - 113.5) < 0.01, "\(census.durations.sum)")
        #expect(census.reports == 4 * 3 + 1)
    }

    /// The aggregate says what decoding every trial says, on a store of many trials of every state.
    @Test func agreesWithTheTrialsDecodedOneByOne() async throws {
        let store = try Store()
        let bounds: [Double] = [1, 5, 15, 30, 60, 120, 300]
        var generator = SplitMix(seed: 7)
        for e in 0..<3 {
            let experiment = try await store.createExperiment(experiment("e\(e)"))
            let trials = try await store.createTrials(newTrials(60), for: experiment)
            let start = Date(timeIntervalSince1970: 1_800_000_000)
            for trial in trials {
                let state = TrialState.allCases[Int(generator.next() % UInt64(TrialState.allCases.count))]
                if state == .pending { continue }
                if state == .running {
                    try await store.markRunning(trial.id!, handle: [:], logPath: "/x")
                    continue
                }
                let count = Int(generator.next() % 5)
                try await store.finishTrial(trial.id!, TrialEnd(state: state, reason: "", message: "",
                                                                observation: count == 0 ? [] : [summary("loss", count: count)]))
                // Whole milliseconds (what the store keeps), never a whole second: no duration is on a bound.
                let milliseconds = generator.next() % 400_000
                let seconds = Double(milliseconds % 1000 == 0 ? milliseconds + 1 : milliseconds) / 1000
                try await setTimes(store, trial.id!, started: generator.next() % 10 == 0 ? nil : start,
                                   completed: start.addingTimeInterval(seconds))
            }
        }

        var states: [TrialState: Int] = [:]
        var durations: [Double] = []
        var reports = 0
        for experiment in try await store.experiments() {
            for trial in try await store.trials(of: experiment.id!) {
                states[trial.state, default: 0] += 1
                reports += trial.observation.reduce(0) { $0 + $1.count }
                if trial.state.isFinished, let started = trial.startedAt, let ended = trial.completedAt {
                    durations.append(ended.timeIntervalSince(started))
                }
            }
        }
        let census = try await store.census(durationBounds: bounds)
        #expect(census.trials == states)
        #expect(census.reports == reports && reports > 0)
        #expect(census.durations.count == durations.count && !durations.isEmpty)
        // No duration is within a millisecond of a bound: rounding in either computation moves none across.
        #expect(census.durations.cumulativeCounts == bounds.map { bound in durations.filter { $0 <= bound }.count })
        #expect(abs(census.durations.sum - durations.reduce(0, +)) < 0.01)
    }

    @Test func theObserverIsToldOfEveryWriteTransactionWithItsKind() async throws {
        let seen = Mutex<[StoreTransactionKind]>([])
        var store = try Store()
        store.observer = StoreObserver { kind, duration in
            precondition(duration >= .zero)
            seen.withLock { $0.append(kind) }
        }
        let experiment = try await store.createExperiment(experiment("a"))
        let trial = try await store.createTrials(newTrials(1), for: experiment)[0]
        try await store.markRunning(trial.id!, handle: [:], logPath: "/x")
        try await store.appendReports(trial.id!, reports: [MetricRecord(trialId: 0, name: "loss", value: 1, text: nil, step: 1, timestamp: Date())],
                                      logOffset: 4)
        try await store.appendEvent(EventRecord(experimentId: experiment.id!, kind: "Note", message: "n"))
        try await store.finishTrial(trial.id!, TrialEnd(state: .succeeded, reason: "", message: ""))
        // A failed transaction is timed too.
        await #expect(throws: StoreError.self) { try await store.deleteExperiment(named: "nothing") }
        // Reads are not write transactions.
        _ = try await store.census(durationBounds: [1])
        _ = try await store.trials(of: experiment.id!)
        #expect(seen.withLock { $0 } == [.experiment, .trial, .trial, .reports, .event, .trial, .experiment])
    }
}

/// A small seeded generator, so that the generated store is the same at every run.
struct SplitMix {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49EB_133B_11EB
        return z ^ (z >> 31)
    }
}
