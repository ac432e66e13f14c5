import Foundation
import Store
import Testing
@testable import Knob

@Suite struct ScraperTests {
    func scraper(_ names: [String], _ collector: MetricsCollectorSpec = .stdOut) throws -> MetricsScraper {
        try MetricsScraper(metricNames: names, collector: collector)
    }

    func pairs(_ scraper: MetricsScraper, _ line: String) -> [String] {
        scraper.reports(in: Array(line.utf8)).map { "\($0.name)=\($0.value.map { "\($0)" } ?? "text:\($0.text ?? "")")" }
    }

    @Test func katibDefaultFormat() throws {
        let s = try scraper(["accuracy", "loss", "lr", "val/acc"])
        #expect(pairs(s, "Epoch 3. accuracy=0.9712 - loss=0.0934") == ["accuracy=0.9712", "loss=0.0934"])
        #expect(pairs(s, "accuracy=.98, loss=1e-3 lr=-2") == ["accuracy=0.98", "loss=0.001", "lr=-2.0"])
        #expect(pairs(s, "accuracy = 0.5  loss= 2E+2") == ["accuracy=0.5", "loss=200.0"])
        #expect(pairs(s, "val/acc=0.7 train/loss=0.3 foo=1 accuracy_top5=0.9") == ["val/acc=0.7", "loss=0.3"])
        #expect(pairs(s, "step 3.accuracy=0.25") == ["accuracy=0.25"])
        #expect(pairs(s, "loss=nan accuracy=3abc") == ["loss=text:nan", "accuracy=text:3abc"])
        #expect(pairs(s, "no metrics here, x == y, = 3, accuracy=") == [])
    }

    @Test func leadingTimestampsAreTheReportsTime() throws {
        let s = try scraper(["accuracy"])
        let utc = s.reports(in: Array("2026-01-01T00:00:01Z INFO     Epoch 1. accuracy=0.8123".utf8))
        #expect(utc.first?.timestamp == Date(timeIntervalSince1970: 1_767_225_601))
        let offset = s.reports(in: Array("2026-01-01T02:00:01.500+02:00 accuracy=0.5".utf8))
        #expect(offset.first?.timestamp == Date(timeIntervalSince1970: 1_767_225_601.5))
        #expect(s.reports(in: Array("accuracy=0.5".utf8)).first?.timestamp == nil)
        #expect(s.reports(in: Array("2026-13-01T00:00:00Z accuracy=0.5".utf8)).first?.timestamp == nil)
    }

    @Test func customRegexes() throws {
        let collector = MetricsCollectorSpec(kind: .stdOut, path: nil, format: .text,
                                             metricsFormat: ["\\{metricName: ([\\w|-]+), metricValue: ((-?\\d+)(\\.\\d+)?)\\}"])
        let s = try scraper(["accuracy", "loss"], collector)
        #expect(pairs(s, "{metricName: accuracy, metricValue: 0.8}{metricName: loss, metricValue: -1.5} {metricName: other, metricValue: 1}")
                == ["accuracy=0.8", "loss=-1.5"])
        #expect(pairs(s, "accuracy=0.9") == [], "a custom format replaces the default one")
    }

    @Test func jsonLines() throws {
        let json = MetricsCollectorSpec(kind: .file, path: "m.json", format: .json, metricsFormat: [])
        let s = try scraper(["accuracy", "loss"], json)
        let reports = s.reports(in: Array(#"{"accuracy": 0.97, "loss": "0.12", "epoch": 3, "timestamp": 1700000000, "other": 1}"#.utf8))
        #expect(reports.map(\.name) == ["accuracy", "loss"])
        #expect(reports.map(\.value) == [0.97, 0.12])
        #expect(reports.allSatisfy { $0.step == 3 && $0.timestamp == Date(timeIntervalSince1970: 1_700_000_000) })
        #expect(s.reports(in: Array("accuracy=0.5".utf8)).isEmpty)
        #expect(s.reports(in: Array("{not json".utf8)).isEmpty)
        // In the default text format, a JSON line is read as JSON too.
        #expect(pairs(try scraper(["accuracy"]), #"{"accuracy": "0.5", "step": 1}"#) == ["accuracy=0.5"])
    }

    @Test func junkNeverCrashesOrStalls() throws {
        let s = try scraper(["accuracy"])
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let junk = (0..<Int.random(in: 0..<400, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = s.reports(in: junk)
        }
        #expect(pairs(s, "\u{FFFD}\u{0}accuracy=0.5\u{7}") == ["accuracy=0.5"])
        var invalidUTF8: [UInt8] = [0xFF, 0xFE, 0xC3]
        invalidUTF8 += Array(" accuracy=0.25".utf8)
        #expect(s.reports(in: invalidUTF8).map(\.value) == [0.25])
        // A megabyte-long line of separators still yields the report at its end.
        let big = Array(repeating: UInt8(ascii: "="), count: 1 << 20) + Array(" accuracy=0.75".utf8)
        #expect(s.reports(in: big).map(\.value) == [0.75])
    }
}

@Suite struct LineReaderTests {
    @Test func linesSplitAcrossChunksAndOffsetsCountWholeLines() {
        var reader = LineReader()
        #expect(reader.feed(Array("accura".utf8)).isEmpty)
        #expect(reader.consumed == 0)
        let lines = reader.feed(Array("cy=1\r\nloss=2\npart".utf8))
        #expect(lines.map { String(decoding: $0, as: UTF8.self) } == ["accuracy=1", "loss=2"])
        #expect(reader.consumed == Int64("accuracy=1\r\nloss=2\n".utf8.count))
        #expect(reader.finish().map { String(decoding: $0, as: UTF8.self) } == "part")
    }

    @Test func aTooLongLineIsCutNotHeldWhole() {
        var reader = LineReader(startingAt: 100, maxLineBytes: 8)
        let first = reader.feed(Array("0123456789abcdef".utf8))
        #expect(first.map { String(decoding: $0, as: UTF8.self) } == ["01234567"])
        let second = reader.feed(Array("more\nnext\n".utf8))
        #expect(second.map { String(decoding: $0, as: UTF8.self) } == ["next"])
        #expect(reader.consumed == 100 + 26)
    }
}

@Suite struct ObservationTests {
    @Test func reducesToMinMaxLatestInSpecOrder() {
        var builder = ObservationBuilder(metricNames: ["accuracy", "loss"])
        #expect(builder.add(MetricReport(name: "loss", value: 0.5)) == 1)
        builder.add(MetricReport(name: "accuracy", value: 0.7))
        builder.add(MetricReport(name: "accuracy", value: 0.9))
        #expect(builder.add(MetricReport(name: "accuracy", value: nil, text: "nan")) == 3)
        builder.add(MetricReport(name: "accuracy", value: 0.8, step: 10))
        #expect(builder.metrics.map(\.name) == ["accuracy", "loss"])
        #expect(builder.metrics[0].min == 0.7 && builder.metrics[0].max == 0.9 && builder.metrics[0].latest == 0.8)
        #expect(builder.value(of: "accuracy", strategy: .max) == 0.9)
        #expect(builder.value(of: "accuracy", strategy: .latest) == 0.8)
        #expect(builder.value(of: "missing", strategy: .max) == nil)
    }
}

/// Custom filters read as Katib's collector reads them: Go's regexp, RE2 syntax, where ICU differs.
@Suite struct KatibFilterSyntaxTests {
    func reports(_ filter: String, _ line: String, metrics: [String] = ["accuracy", "loss"]) throws -> [String] {
        let s = try MetricsScraper(metricNames: metrics, collector: MetricsCollectorSpec(kind: .stdOut, path: nil, format: .text, metricsFormat: [filter]))
        return s.reports(in: Array(line.utf8)).map { "\($0.name)=\($0.value.map { "\($0)" } ?? $0.text ?? "")" }
    }

    @Test func bareBracesAreLiteralsAsInKatibsOwnTests() throws {
        // The filter of Katib's collector tests, unescaped: ICU refuses a bare '{'; RE2 reads it as a literal.
        let filter = "{metricName: ([\\w|-]+), metricValue: ((-?\\d+)(\\.\\d+)?)}"
        #expect(try reports(filter, "{metricName: accuracy, metricValue: 0.8}{metricName: loss, metricValue: -1.5}") == ["accuracy=0.8", "loss=-1.5"])
        // A brace that does make a repetition still does.
        #expect(try reports("(acc\\w{5})=(\\d\\.\\d{2})", "accuracy=0.81") == ["accuracy=0.81"])
    }

    @Test func quotedLiteralsNamedGroupsAndUnicodeClasses() throws {
        // \Q…\E quotes: the parentheses inside are not groups.
        #expect(try reports("\\Q(metric)\\E (\\w+) \\Q[value]\\E (\\S+)", "(metric) loss [value] 0.25") == ["loss=0.25"])
        // Named groups, in both of Go's spellings.
        #expect(try reports("(?P<name>\\w+):\\s*(?P<value>[\\d.]+)", "accuracy: 0.9") == ["accuracy=0.9"])
        #expect(try reports("(?<name>\\w+):\\s*(?<value>[\\d.]+)", "loss: 0.3") == ["loss=0.3"])
        // Unicode classes: \pL (one letter, RE2's short form), \p{Greek}, and POSIX classes in brackets.
        #expect(try reports("(\\pL+)=([[:digit:].]+)", "précision=0.75 accuracy=0.5", metrics: ["précision", "accuracy"])
                == ["précision=0.75", "accuracy=0.5"])
        let greek = try reports("(\\p{Greek}+)=(\\d+)", "αβ=3 ab=4", metrics: ["αβ", "ab"])
        #expect(greek == ["αβ=3.0"])
        // \w is ASCII in RE2 (in ICU it takes letters such as é).
        let ascii = try reports("(\\w+)=(\\d+)", "é=1 e=2", metrics: ["é", "e"])
        #expect(ascii == ["e=2.0"])
    }

    @Test func whatRE2RefusesIsASpecErrorWithItsPosition() {
        #expect(throws: MetricRegex.Invalid.self) { try MetricRegex("(\\w+)=(\\d+)\\1") }  // backreference
        #expect(throws: MetricRegex.Invalid.self) { try MetricRegex("(\\w+)(?=x)=(\\d+)") }  // lookahead
        do {
            _ = try MetricRegex("(\\w+)=([0-9+)")
            Issue.record("an unclosed class compiled")
        } catch {
            #expect("\(error)" == "\"(\\w+)=([0-9+)\" is not a valid regular expression in Katib's (Go's RE2) syntax: missing ] at character 8")
        }
    }

    @Test func aPatternThatBacktracksExponentiallyElsewhereRunsInLinearTime() throws {
        // Nested repetition over a long line without a match: a backtracking engine (ICU, Python's re)
        // takes 2^n steps here; RE2 does one pass.
        let line = String(repeating: "a", count: 50_000) + "!"
        #expect(try reports("((a+)+)=(\\d)", line, metrics: ["a"]).isEmpty)
        #expect(try reports("((?:a+)+)=(\\d)", String(repeating: "a", count: 30) + "=5", metrics: [String(repeating: "a", count: 30)]).count == 1)
    }
}

@Suite struct FileTailTests {
    @Test func aReplacedOrTruncatedFileIsReadAgainFromItsStart() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tail-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = "\(dir)/metrics.log"
        let tail = FileTail(path: path)
        #expect(tail.read().isEmpty, "no file yet")
        try "accuracy=0.5\naccuracy=0.6\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(String(decoding: tail.read(), as: UTF8.self) == "accuracy=0.5\naccuracy=0.6\n")
        #expect(!tail.startedOver())
        // Appended: only what is new.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("accuracy=0.7\n".utf8))
        try handle.close()
        #expect(String(decoding: tail.read(), as: UTF8.self) == "accuracy=0.7\n")
        // Truncated and written again, shorter: read from the start.
        try "loss=1\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(String(decoding: tail.read(), as: UTF8.self) == "loss=1\n")
        #expect(tail.startedOver())
        #expect(!tail.startedOver(), "said once")
        // Replaced by another file (written beside it and renamed over it, as atomic writers do).
        try "accuracy=0.9\naccuracy=0.95\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(String(decoding: tail.read(), as: UTF8.self) == "accuracy=0.9\naccuracy=0.95\n")
        #expect(tail.startedOver())
        #expect(tail.read().isEmpty)
    }
}
