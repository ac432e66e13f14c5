import Foundation
import Testing
@testable import Knob

@Suite struct PushChannelTests {
    @Test func theTokenIsMadeOnceInAPrivateFileAndReadAfter() throws {
        let channel = PushChannel(trialDirectory: makeTemporaryDirectory() + "/trials/e/e-1")
        #expect(channel.existingToken() == nil)
        let token = try channel.token()
        #expect(token.count == 64 && token.allSatisfy(\.isHexDigit))
        #expect(try channel.token() == token && channel.existingToken() == token)
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: channel.tokenPath)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        let other = try PushChannel(trialDirectory: makeTemporaryDirectory()).token()
        #expect(other != token)
        // Nothing but the token is left in the folder.
        #expect(try FileManager.default.contentsOfDirectory(atPath: channel.trialDirectory) == [PushChannel.tokenFileName])
    }

    @Test func reportsAreAppendedUntilTheChannelIsSealed() throws {
        let channel = PushChannel(trialDirectory: makeTemporaryDirectory())
        try channel.append(Array("{\"a\":1}\n".utf8))
        try channel.append(Array("{\"a\":2}\n".utf8))
        channel.seal()
        #expect(throws: PushChannel.Refusal.closed) { try channel.append(Array("{\"a\":3}\n".utf8)) }
        #expect(try String(contentsOfFile: channel.reportsPath, encoding: .utf8) == "{\"a\":1}\n{\"a\":2}\n")
        channel.reset()
        try channel.append(Array("{\"a\":4}\n".utf8))
        #expect(try String(contentsOfFile: channel.reportsPath, encoding: .utf8) == "{\"a\":4}\n")
    }

    @Test func aReportIsAJSONObjectOfNumbersWithAnOptionalStep() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let report = try PushedReport(json: Data(#"{"accuracy": 0.97, "loss": "0.125", "step": 3, "other": 1e-3}"#.utf8),
                                      metricNames: ["accuracy", "loss"], now: now)
        #expect(report.values == ["accuracy": 0.97, "loss": 0.125] && report.step == 3 && report.ignored == ["other"])
        #expect(report.timestamp == 1_800_000_000)
        // The line is read back by the JSON-lines scraper as the same reports.
        let scraper = try MetricsScraper(metricNames: ["accuracy", "loss"],
                                         collector: MetricsCollectorSpec(kind: .push, path: nil, format: .json, metricsFormat: []))
        let read = scraper.reports(in: Array(report.line.dropLast()))
        #expect(read.map(\.name) == ["accuracy", "loss"] && read.map(\.value) == [0.97, 0.125] && read.allSatisfy { $0.step == 3 })
        #expect(read.allSatisfy { $0.timestamp == now })
        let stamped = try PushedReport(json: Data(#"{"accuracy": 1, "timestamp": "2026-01-02T03:04:05Z"}"#.utf8), metricNames: ["accuracy"])
        #expect(stamped.timestamp == 1_767_323_045 && stamped.step == nil)
    }

    @Test func whatIsNoReportIsRefusedSayingWhy() {
        func problem(_ body: String) -> PushedReport.Problem? {
            do {
                _ = try PushedReport(json: Data(body.utf8), metricNames: ["accuracy", "loss"])
                return nil
            } catch {
                return error
            }
        }
        #expect(problem("[1, 2]") == .malformed("the body must be a JSON object of metric values, e.g. {\"accuracy\": 0.97, \"step\": 3}"))
        #expect(problem("not json") != nil && problem("") != nil)
        #expect(problem(#"{"accuracy": "high"}"#) == .invalid("accuracy: \"high\" is not a finite number"))
        #expect(problem(#"{"accuracy": true}"#) == .invalid("accuracy: the value is a boolean, not a number"))
        #expect(problem(#"{"accuracy": null}"#) == .invalid("accuracy: the value is null, not a number"))
        #expect(problem(#"{"accuracy": [1]}"#) == .invalid("accuracy: the value is an array or an object, not a number"))
        #expect(problem(#"{"accuracy": "inf"}"#) == .invalid("accuracy: \"inf\" is not a finite number"))
        #expect(problem(#"{"accuracy": 1, "step": -1}"#) == .invalid("step: -1 is not a whole number from 0"))
        #expect(problem(#"{"accuracy": 1, "step": 1.5}"#) == .invalid("step: 1.5 is not a whole number from 0"))
        #expect(problem(#"{"accuracy": 1, "timestamp": "yesterday"}"#) == .invalid("timestamp: give RFC 3339 text (2026-01-01T00:00:00Z) or Unix seconds"))
        #expect(problem(#"{"step": 2, "speed": 3}"#) == .invalid("the report has none of the experiment's metrics (accuracy, loss); it has speed"))
        #expect(problem(#"{"accuracy": 1, "speed": "fast"}"#) == .invalid("speed: \"fast\" is not a finite number"))
    }
}
