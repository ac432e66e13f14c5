import Foundation
import Testing
@testable import Store

/// What changed in an experiment after a cursor, as the dashboard's update streams read it, and the
/// probe that tells them another connection (another process) committed.
@Suite struct StoreChangesTests {
    func experiment(_ name: String) -> ExperimentRecord {
        ExperimentRecord(name: name, specText: "spec", specJSON: "{}", seed: 1, objectiveType: "minimize",
                         objectiveMetricName: "loss", directory: "/tmp")
    }

    func report(_ trial: TrialRecord, _ name: String, _ value: Double, step: Int) -> MetricRecord {
        MetricRecord(trialId: trial.id!, name: name, value: value, text: nil, step: step, timestamp: Date())
    }

    @Test func aReadAfterACursorFindsTheNewTheStartedTheReportedAndTheEndedTrialsOnly() async throws {
        let store = try Store()
        let mine = try await store.createExperiment(experiment("mine"))
        let other = try await store.createExperiment(experiment("other"))
        let first = try await store.createTrials([NewTrial(assignments: []), NewTrial(assignments: []), NewTrial(assignments: [])], for: mine)
        _ = try await store.createTrials([NewTrial(assignments: [])], for: other)

        let everything = try await store.changes(of: mine.id!, since: .start)
        #expect(everything.trials.map(\.name) == ["mine-1", "mine-2", "mine-3"] && everything.reports.isEmpty && everything.logged)
        var cursor = everything.cursor
        #expect(try await store.changes(of: mine.id!, since: cursor).isEmpty, "nothing after the cursor yet")

        // One trial starts, one reports, one more is created; the other experiment's trial reports too.
        try await store.markRunning(first[0].id!, handle: [:], logPath: "/tmp/log")
        try await store.appendReports(first[1].id!, reports: [report(first[1], "loss", 0.5, step: 0), report(first[1], "acc", 0.9, step: 0)], logOffset: 10)
        let more = try await store.createTrials([NewTrial(assignments: [])], for: mine)
        let otherTrial = try #require(try await store.trials(of: other.id!).first)
        try await store.appendReports(otherTrial.id!, reports: [report(otherTrial, "loss", 7, step: 0)], logOffset: 5)
        let changed = try await store.changes(of: mine.id!, since: cursor)
        #expect(changed.trials.map(\.name) == ["mine-1", "mine-2", more[0].name])
        #expect(changed.trials[0].state == .running)
        #expect(changed.reports.map { "\($0.trialName) \($0.name) \($0.value)" } == ["mine-2 loss 0.5", "mine-2 acc 0.9"])
        #expect(try await store.changes(of: mine.id!, since: cursor, metric: "loss").reports.map(\.name) == ["loss"])
        let oneTrial = try await store.changes(of: mine.id!, since: cursor, trialId: first[1].id!)
        #expect(oneTrial.trials.map(\.name) == ["mine-2"] && oneTrial.reports.count == 2)
        #expect(cursor.isAtOrBefore(changed.cursor) && cursor != changed.cursor)
        cursor = changed.cursor

        // A trial's end is a change of it alone.
        try await store.finishTrial(first[2].id!, TrialEnd(state: .failed, reason: "TrialFailed", message: "exit 1", exitCode: 1))
        let ended = try await store.changes(of: mine.id!, since: cursor)
        #expect(ended.trials.map { "\($0.name) \($0.state.rawValue)" } == ["mine-3 Failed"] && ended.reports.isEmpty)
        // The text of a cursor reads back as the cursor; anything else is refused.
        #expect(ChangeCursor(ended.cursor.description) == ended.cursor)
        for text in ["", "1-2", "1-2-3-4", "a-2-3", "-1-2-3", "1--3", "99999999999999999999-1-1"] { #expect(ChangeCursor(text) == nil, "\(text)") }
    }

    @Test func theProbeSeesCommitsOfOtherConnectionsOnly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("knob-changes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("knob.db").path
        let store = try Store(path: path)
        let probe = try StoreChangeProbe(store)
        let start = try await probe.version()
        #expect(try await probe.version() == start, "no commit, same version")
        // Another process's store on the same file.
        let writer = try Store(path: path)
        try await writer.createExperiment(experiment("written-elsewhere"))
        let afterWrite = try await probe.version()
        #expect(afterWrite != start)
        #expect(try await probe.version() == afterWrite)
        _ = try await store.experiments()
        #expect(try await probe.version() == afterWrite, "reads are not commits")
        // Read on the calling thread: the same number, and it grows with each commit, this process's too.
        #expect(try probe.versionNow() == afterWrite)
        try await store.createExperiment(experiment("written-here"))
        let afterOwnWrite = try probe.versionNow()
        #expect(afterOwnWrite > afterWrite)
        #expect(try await probe.version() == afterOwnWrite && (try probe.versionNow()) == afterOwnWrite)
    }
}
