import Foundation
import GRDB
import PropertyBased
import Testing
@testable import Store

/// A trial row read column by column gives back exactly the record its Codable encoding stored.
@Suite struct TrialRowTests {
    static let texts = ["", "a", "lr", "ü \"quoted\" \\ / \n", "{}", "[]", "null", "0.5", String(repeating: "x", count: 300)]

    /// A record made from `numbers`: every optional present or absent, JSON columns empty or not.
    static func record(_ numbers: [UInt64], sequence: Int) -> TrialRecord {
        var iterator = numbers.makeIterator()
        func next() -> UInt64 { iterator.next() ?? 0 }
        func text() -> String { texts[Int(next() % UInt64(texts.count))] }
        func maybe<T>(_ make: () -> T) -> T? { next() % 2 == 0 ? nil : make() }
        // Dates as the store keeps them: to the millisecond, as its text reads back.
        func date() -> Date {
            let date = Date(timeIntervalSince1970: Double(1_700_000_000_000 + Int64(next() % 100_000_000)) / 1000)
            return Date.fromDatabaseValue(date.databaseValue)!
        }
        // Observations hold finite values (JSON has no others); the objective column may hold an infinity.
        func double() -> Double { [0, -1.5, 1e300, -0.0, 0.1 + 0.2][Int(next() % 5)] }
        let dictionary = (0..<Int(next() % 3)).reduce(into: [String: String]()) { result, i in result["\(text())\(i)"] = text() }
        return TrialRecord(
            experimentId: 1, sequence: sequence, name: "t-\(sequence)",
            assignments: (0..<Int(next() % 3)).map { _ in ParameterAssignment(name: text(), value: text()) },
            suggesterMetadata: dictionary, state: TrialState.allCases[Int(next() % UInt64(TrialState.allCases.count))],
            reason: text(), message: text(),
            runnerHandle: next() % 2 == 0 ? [:] : ["pid": "\(next() % 100_000)", "status": text()],
            logPath: maybe(text), logOffset: Int64(next() % 1_000_000),
            observation: (0..<Int(next() % 3)).map { _ in
                MetricSummary(name: text(), min: double(), max: double(), latest: double(), count: Int(next() % 50))
            },
            objectiveValue: maybe { next() % 5 == 0 ? -.infinity : double() }, exitCode: maybe { Int(next() % 256) - 128 }, createdAt: date(), startedAt: maybe(date),
            completedAt: maybe(date),
            stopping: maybe { TrialStopping(state: .earlyStopped, reason: text(), message: text()) })
    }

    @Test func whatTheEncodingStoresIsReadBackEqual() async throws {
        let store = try Store(path: makeTemporaryDirectory() + "/knob.db")
        var experiment = ExperimentRecord(name: "e", specText: "", specJSON: "{}", seed: 1, objectiveType: "minimize",
                                          objectiveMetricName: "loss", directory: "/")
        experiment = try await store.createExperiment(experiment)
        let sequence = Sequence()
        await propertyCheck(count: 300, input: Gen<UInt64>.value(in: 0...UInt64.max).array(of: 40...40)) { numbers in
            var record = Self.record(numbers, sequence: sequence.next())
            record.experimentId = experiment.id!
            let inserted = record
            let read = try? await store.writer.write { db in
                var stored = inserted
                try stored.insert(db)  // the Codable encoding
                return try TrialRecord.fetchOne(db, key: stored.id!)
            }
            record.id = read?.id
            #expect(read == record, "\(numbers)")
        }
    }

    @Test func aJSONColumnThatIsNotJSONIsAnErrorNotACrash() async throws {
        let store = try Store(path: makeTemporaryDirectory() + "/knob.db")
        let experiment = try await store.createExperiment(ExperimentRecord(
            name: "e", specText: "", specJSON: "{}", seed: 1, objectiveType: "minimize", objectiveMetricName: "loss", directory: "/"))
        let trials = try await store.createTrials([NewTrial(assignments: [ParameterAssignment(name: "x", value: "1")])], for: experiment)
        try await store.writer.write { db in try db.execute(sql: "UPDATE trial SET observation = 42 WHERE id = ?", arguments: [trials[0].id]) }
        await #expect(throws: (any Error).self) { try await store.trials(of: experiment.id!) }
        try await store.writer.write { db in
            try db.execute(sql: "UPDATE trial SET observation = ?, runnerHandle = '' WHERE id = ?", arguments: [Data("[]".utf8), trials[0].id])
        }
        await #expect(throws: (any Error).self) { try await store.trials(of: experiment.id!) }
    }
}

private final class Sequence: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.withLock { value += 1; return value } }
}
