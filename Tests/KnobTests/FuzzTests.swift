import Foundation
import PropertyBased
import Testing
@testable import KnobAlgorithms
@testable import Knob
import Store

/// How many inputs each fuzz test tries: 10,000 by default, `KNOB_FUZZ_ITERATIONS` for more.
let fuzzIterations = ProcessInfo.processInfo.environment["KNOB_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 10_000

/// Specs mutated at random (the seed of a failing case is printed, to replay it with `.fixedSeed`):
/// the parser never traps or hangs, every spec it accepts can run, and every spec it refuses
/// gets problems a person can read.
@Suite struct SpecFuzzTests {
    static let corpus: [String] = [
        localSpec, katibJobSpec,
        #"{"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "j"}, "spec": {"objective": {"type": "maximize", "#
            + #""objectiveMetricName": "acc", "goal": 0.9}, "algorithm": {"algorithmName": "cmaes"}, "parallelTrialCount": 2, "maxTrialCount": 9, "#
            + #""parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.001", "max": "0.1", "distribution": "logUniform"}}, "#
            + #"{"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "9", "step": "2"}}], "#
            + #""trialTemplate": {"command": ["/bin/echo", "acc=${trialParameters.lr}", "${trialParameters.n}"], "timeoutSeconds": 30}}}"#,
        """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: gp}
        spec:
          objective: {type: minimize, objectiveMetricName: loss, additionalMetricNames: [acc]}
          algorithm:
            algorithmName: bayesianoptimization
            algorithmSettings: [{name: n_initial_points, value: "3"}]
          parameters:
            - {name: x, parameterType: double, feasibleSpace: {min: "-5", max: "10"}}
            - {name: c, parameterType: categorical, feasibleSpace: {list: [a, b, c]}}
            - {name: d, parameterType: discrete, feasibleSpace: {list: ["1", "2.5"]}}
          trialTemplate:
            env: {C: "${trialParameters.c}"}
            command: [python3, f.py, "${trialParameters.x}", "${trialParameters.d}"]
        """,
    ]

    /// What a mutation may put in: YAML's and JSON's structure, aliases, extreme numbers, odd text.
    static let tokens: [String] = [
        "&a ", "*a", "[", "]", "{", "}", ": ", "- ", "\"", "'", ", ", "\n", "\n  ", "\t", "? ", "!!str ", "!!binary ", "|", ">", "#",
        "~", "null", "true", "0x10", ".nan", "-.inf", "1e308", "1e-300", "-9223372036854775808", "9223372036854775807", "9007199254740993",
        "0", "-1", "4.9e-324", "1000000000", "\u{FEFF}", "\u{0}", "é", "${trialParameters.", "${trialParameters.x}", "grid", "step: ",
        "min: ", "max: ", "list: [", "parameterType: int", "parallelTrialCount: ", "timeoutSeconds: ", "algorithmName: grid",
    ]

    static func mutate(_ text: String, _ codes: [UInt64]) -> String {
        var bytes = Array(text.utf8)
        for code in codes {
            let op = code % 8, r = code / 8
            let position = Int(r % UInt64(bytes.count + 1))
            let token = Array(tokens[Int((r >> 16) % UInt64(tokens.count))].utf8)
            switch op {
            case 0, 1:
                bytes.insert(contentsOf: token, at: position)
            case 2:
                bytes.removeSubrange(position..<min(bytes.count, position + 1 + Int((r >> 24) % 24)))
            case 3:
                // A number (or any word) replaced with a token.
                var end = position
                while end < bytes.count, !(bytes[end] == 0x20 || bytes[end] == 0x0A || bytes[end] == 0x2C || bytes[end] == 0x7D) { end += 1 }
                bytes.replaceSubrange(position..<end, with: token)
            case 4:
                // A line repeated.
                let start = bytes[..<position].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
                let end = bytes[position...].firstIndex(of: 0x0A).map { $0 + 1 } ?? bytes.count
                let line = Array(bytes[start..<end])
                for _ in 0..<(1 + Int((r >> 24) % 4)) { bytes.insert(contentsOf: line, at: start) }
            case 5:
                if position < bytes.count { bytes[position] = UInt8(truncatingIfNeeded: r >> 24) }
            case 6:
                bytes.removeSubrange(position...)
            default:
                // Two lines swapped.
                let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
                guard lines.count > 1 else { continue }
                var swapped = lines.map(Array.init)
                swapped.swapAt(Int(r % UInt64(lines.count)), Int((r >> 20) % UInt64(lines.count)))
                bytes = Array(swapped.joined(separator: [0x0A]))
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func theParserNeverTrapsAndWhatItAcceptsCanRun() async {
        let accepted = Counter(), refused = Counter()
        await propertyCheck(count: fuzzIterations, input: Gen.element(of: Self.corpus), Gen<UInt64>.value(in: 0...UInt64.max).array(of: 1...4)) {
            base, codes in
            let text = Self.mutate(base ?? "", codes)
            do {
                let spec = try ExperimentSpec.parse(text)
                accepted.add()
                Self.checkRunnable(spec)
            } catch let error as SpecError {
                refused.add()
                #expect(!error.problems.isEmpty)
                for problem in error.problems {
                    #expect(!problem.message.isEmpty)
                    #expect(!problem.message.contains("Yams.") && !problem.message.contains("Swift."), "\(problem)")
                }
            } catch {
                Issue.record("not a spec error: \(error)")
            }
        }
        print("fuzz: spec parser: \(accepted.value + refused.value) mutated specs, \(accepted.value) accepted, \(refused.value) refused, 0 crashes")
    }

    /// An accepted spec stays within the limits, and its algorithm suggests points of its space.
    static func checkRunnable(_ spec: ExperimentSpec) {
        let limits = SpecLimits.default
        #expect((1...limits.maxParallelTrialCount).contains(spec.parallelTrialCount))
        #expect(spec.maxTrialCount.map { (1...limits.maxTrialCount).contains($0) } ?? true)
        #expect(spec.trialTemplate.timeoutSeconds.map { $0 > 0 && $0 <= limits.maxTimeoutSeconds } ?? true)
        let space = spec.searchSpace
        do {
            let suggester = try SuggesterRegistry.make(spec.algorithm.algorithmName, context: SuggesterContext(
                space: space, settings: spec.algorithm.settingsByName, seed: 7))
            let suggestions = try suggester.suggest(count: min(spec.parallelTrialCount, 4), history: History([]))
            for suggestion in suggestions { #expect(space.contains(suggestion.assignment), "\(suggestion.assignment)") }
        } catch {
            Issue.record("an accepted spec cannot suggest: \(error)")
        }
        // The store keeps the spec as JSON: reading it back gives the same JSON.
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = try? encoder.encode(spec)
        #expect(json.flatMap { try? encoder.encode(JSONDecoder().decode(ExperimentSpec.self, from: $0)) } == json)
    }
}

/// Output lines made of metric-like pieces and junk: the scraper never traps, keeps only declared
/// names, and never reports a number that is not finite.
@Suite struct ScraperFuzzTests {
    static let pieces: [String] = [
        "accuracy", "loss", "val/acc", "other", "=", " = ", "0.97", "-1e-3", ".5", "1e999", "-0", "nan", "inf", "3abc", " - ", ", ", " ",
        "Epoch 3.", "{", "}", "\"", ":", "\"accuracy\": ", "\"step\": 3", "[", "]", "2026-01-01T00:00:01Z ", "2026-13-45T99:99:99Z ",
        "\u{FFFD}", "\u{0}", "\\", "metricName: ", "metricValue: ", "==", "=.", "=-", "e", "E+", "\t",
        "\"step\": 1e300", "\"timestamp\": 1e300", "\"timestamp\": \"-1e300\"", "\"epoch\": -1e19", "0000-01-01T00:00:00Z ",
    ]

    @Test func theScraperNeverTrapsAndReportsOnlyDeclaredFiniteMetrics() async throws {
        let names = ["accuracy", "loss", "val/acc"]
        let scrapers = [
            try MetricsScraper(metricNames: names, collector: .stdOut),
            try MetricsScraper(metricNames: names, collector: MetricsCollectorSpec(kind: .stdOut, path: nil, format: .json, metricsFormat: [])),
            try MetricsScraper(metricNames: names, collector: MetricsCollectorSpec(
                kind: .stdOut, path: nil, format: .text, metricsFormat: ["\\{metricName: ([\\w|-]+), metricValue: ((-?\\d+)(\\.\\d+)?)\\}"])),
        ]
        let reports = Counter(), lines = Counter()
        await propertyCheck(count: fuzzIterations, input: Gen.element(of: Self.pieces).array(of: 0...24), Gen<UInt8>.value(in: 0...255).array(of: 0...8)) {
            parts, junk in
            var line = Array(parts.compactMap { $0 }.joined().utf8)
            line.insert(contentsOf: junk, at: junk.isEmpty ? 0 : Int(junk[0]) % (line.count + 1))
            lines.add()
            for scraper in scrapers {
                for report in scraper.reports(in: line) {
                    reports.add()
                    #expect(names.contains(report.name), "\(report.name)")
                    #expect(report.value.map(\.isFinite) ?? (report.text != nil), "\(report)")
                    #expect(report.timestamp.map { abs($0.timeIntervalSince1970) < 253_402_300_800 } ?? true, "\(report)")
                    #expect(report.step.map { abs($0) <= 1 << 53 } ?? true, "\(report)")
                }
            }
        }
        print("fuzz: metrics scraper: \(lines.value) lines through 3 formats, \(reports.value) reports, 0 crashes")
    }
}

/// A count shared by the iterations of a property check.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// JSON reports with numbers at the ends of what JSON can say: read without trapping, and
/// stored with a time and a step the store can hold.
@Suite struct ExtremeReportTests {
    @Test func extremeStepsAndTimestampsAreReadAndStored() async throws {
        let scraper = try MetricsScraper(metricNames: ["loss"], collector: MetricsCollectorSpec(kind: .stdOut, path: nil, format: .json, metricsFormat: []))
        let lines = [
            #"{"loss": 1, "step": 1e300, "timestamp": 1e300}"#, #"{"loss": 2, "step": -1e300, "timestamp": -1e300}"#,
            #"{"loss": 3, "step": "99999999999999999999", "timestamp": "nan"}"#, #"{"loss": 4, "epoch": 1.5, "timestamp": "1e20"}"#,
        ]
        let reports = lines.flatMap { scraper.reports(in: Array($0.utf8)) }
        #expect(reports.map(\.value) == [1, 2, 3, 4])
        for report in reports {
            if let timestamp = report.timestamp { #expect(abs(timestamp.timeIntervalSince1970) < 1e11, "\(timestamp)") }
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("knob-extreme-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try Store(path: "\(directory)/knob.db")
        let spec = try ExperimentSpec.parse(localSpec)
        let experiment = try await store.createExperiment(try Engine.newRecord(specText: localSpec, spec: spec, directory: directory))
        let trial = try #require(try await store.createTrials([NewTrial(assignments: [], suggesterMetadata: [:])], for: experiment).first)
        try await store.appendReports(trial.id!, reports: reports.enumerated().map { i, report in
            MetricRecord(trialId: trial.id!, name: report.name, value: report.value, text: report.text, step: report.step ?? i,
                         timestamp: report.timestamp ?? Date())
        }, logOffset: 10)
        #expect(try await store.metrics(ofTrial: trial.id!).map(\.value) == [1, 2, 3, 4])
    }
}
