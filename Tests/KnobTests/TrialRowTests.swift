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

    /// Pieces of the strings below: plain ASCII, and every kind of character JSON escapes or that is not ASCII.
    static let pieces = ["a", "lr", "0.5", "/", "-", " ", "_", "Z", "\"", "\\", "\n", "\u{1}", "\u{7f}", "é", "😀", "\u{2028}"]

    static func string(_ indices: [Int]) -> String { indices.map { pieces[$0 % pieces.count] }.joined() }

    /// Printable ASCII without a quote or a backslash: what PlainJSON writes itself.
    static func isPlain(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }

    /// The encoder's text, then that text after each edit in turn: a byte cut, replaced by `byte`, or `byte` inserted.
    static func edited(_ json: Data, edits: [Int], byte: UInt8) -> [[UInt8]] {
        var variants = [Array(json)]
        var changed = Array(json)
        for edit in edits where !changed.isEmpty {
            let at = edit % changed.count
            switch edit % 3 {
            case 0: changed.remove(at: at)
            case 1: changed[at] = byte
            default: changed.insert(byte, at: at)
            }
            variants.append(changed)
        }
        return variants
    }

    /// Columns written without JSONEncoder are its bytes exactly, and taken only for plain ASCII; read without
    /// JSONDecoder they are what it reads, for the encoder's text and for that text cut or changed anywhere.
    @Test func theJSONColumnsWrittenAndReadPlainlyAreTheEncodersAndDecodersOwn() async throws {
        let encoder = TrialRecord.databaseJSONEncoder(for: "assignments"), decoder = TrialRecord.databaseJSONDecoder(for: "assignments")
        let strings = Gen<Int>.value(in: 0...99).array(of: 0...6).map(Self.string)
        await propertyCheck(count: 2000, input: strings.array(of: 0...8), Gen<Int>.value(in: 0...4096).array(of: 0...3), Gen<UInt8>.value(in: 0...255)) {
            texts, edits, byte in
            let assignments = stride(from: 0, to: texts.count - 1, by: 2).map { ParameterAssignment(name: texts[$0], value: texts[$0 + 1]) }
            let dictionary = Dictionary(assignments.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
            let assignmentsJSON = try! encoder.encode(assignments), dictionaryJSON = try! encoder.encode(dictionary)
            let allPlain = texts.prefix(assignments.count * 2).allSatisfy(Self.isPlain)
            #expect(PlainJSON.text(assignments).map { Data($0.utf8) } == (allPlain ? assignmentsJSON : nil))
            #expect(PlainJSON.text(dictionary).map { Data($0.utf8) } == (dictionary.allSatisfy { Self.isPlain($0.key) && Self.isPlain($0.value) } ? dictionaryJSON : nil))
            // The encoder's text, then the same text with bytes cut, replaced or added.
            for json in [assignmentsJSON, dictionaryJSON] {
                for bytes in Self.edited(json, edits: edits, byte: byte) {
                    let data = Data(bytes)
                    if let read = bytes.withUnsafeBufferPointer(PlainJSON.assignments) {
                        #expect(read == (try? decoder.decode([ParameterAssignment].self, from: data)), "\(String(decoding: bytes, as: UTF8.self))")
                    }
                    if let read = bytes.withUnsafeBufferPointer(PlainJSON.dictionary) {
                        #expect(read == (try? decoder.decode([String: String].self, from: data)), "\(String(decoding: bytes, as: UTF8.self))")
                    }
                }
            }
            // Without backslashes other than the encoder's `\/`, its own text is read plainly.
            let slashFree = { (s: String) in !s.contains("\"") && !s.contains("\\") && s.unicodeScalars.allSatisfy { $0.value >= 0x20 } }
            if texts.prefix(assignments.count * 2).allSatisfy(slashFree) {
                #expect(Array(assignmentsJSON).withUnsafeBufferPointer(PlainJSON.assignments) == assignments)
                #expect(Array(dictionaryJSON).withUnsafeBufferPointer(PlainJSON.dictionary) == dictionary)
            }
        }
    }

    /// The same for observations: numbers of every size and sign (finite: the encoder refuses the others), as the
    /// encoder writes them and as the decoder reads them, to the bit.
    @Test func theObservationColumnWrittenAndReadPlainlyIsTheEncodersAndDecodersOwn() async throws {
        let encoder = TrialRecord.databaseJSONEncoder(for: "observation"), decoder = TrialRecord.databaseJSONDecoder(for: "observation")
        let specials: [Double] = [0, -0.0, 1, -1, 0.5, 1e-5, 1e16, 1e21, 5e-324, .greatestFiniteMagnitude, 0.1 + 0.2, 100, 123456789]
        func double(_ bits: UInt64) -> Double {
            let random = Double(bitPattern: bits)
            return random.isFinite && bits % 3 != 0 ? random : specials[Int(bits % UInt64(specials.count))]
        }
        func same(_ a: [MetricSummary]?, _ b: [MetricSummary]?) -> Bool {
            guard let a, let b, a.count == b.count else { return a == nil && b == nil }
            return zip(a, b).allSatisfy { x, y in
                x.name == y.name && x.count == y.count && x.min.bitPattern == y.min.bitPattern && x.max.bitPattern == y.max.bitPattern
                    && x.latest.bitPattern == y.latest.bitPattern
            }
        }
        // Six numbers a metric: three for its name's pieces, its three values; then its count.
        await propertyCheck(count: 2000, input: Gen<UInt64>.value(in: 0...UInt64.max).array(of: 0...28), Gen<Int>.value(in: 0...4096).array(of: 0...3),
                            Gen<UInt8>.value(in: 0...255)) { numbers, edits, byte in
            var observation: [MetricSummary] = []
            var i = 0
            while i + 7 <= numbers.count {
                let pieces: [Int] = numbers[i..<(i + 3)].map { Int($0 % 100) }
                let count = Int(numbers[i + 6] % 200_000) - 3
                observation.append(MetricSummary(name: Self.string(pieces), min: double(numbers[i + 3]), max: double(numbers[i + 4]),
                                                 latest: double(numbers[i + 5]), count: count))
                i += 7
            }
            let json = try! encoder.encode(observation)
            let plainNames = observation.allSatisfy { Self.isPlain($0.name) }
            #expect(PlainJSON.text(observation).map { Data($0.utf8) } == (plainNames ? json : nil), "\(String(decoding: json, as: UTF8.self))")
            for bytes in Self.edited(json, edits: edits, byte: byte) {
                if let read = bytes.withUnsafeBufferPointer(PlainJSON.observation) {
                    #expect(same(read, try? decoder.decode([MetricSummary].self, from: Data(bytes))), "\(String(decoding: bytes, as: UTF8.self))")
                }
            }
            if plainNames {
                #expect(same(Array(json).withUnsafeBufferPointer(PlainJSON.observation), observation), "\(String(decoding: json, as: UTF8.self))")
            }
        }
        // Numbers at the edges of the range: the decoder refuses those too large and those with a nonzero digit that
        // come to zero, and so must the plain reader.
        for number in ["2.4e-324", "-1.0000000000000137e-408", "1e-400", "1e400", "-1e309", "0e-999", "-0.000e-500", "5e-324", "2.5e-324", "1.7976931348623157e308"] {
            let bytes = Array(#"[{"count":1,"latest":\#(number),"max":0,"min":0,"name":"a"}]"#.utf8)
            let plain = bytes.withUnsafeBufferPointer(PlainJSON.observation)
            #expect(same(plain, try? decoder.decode([MetricSummary].self, from: Data(bytes))), "\(number): \(String(describing: plain))")
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
