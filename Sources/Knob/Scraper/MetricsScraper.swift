import Foundation

/// Turns lines of a trial's output into metric reports, in the format the spec's
/// `metricsCollectorSpec` names. Only declared metric names are kept.
///
/// - Katib's default text format: `name=value` pairs anywhere in a line, several per line,
///   separated by ` - `, spaces or commas; an optional leading RFC 3339 time stamp. Lines that
///   are JSON objects are read as JSON lines.
/// - Custom `metricsFormat` regexes, each with a (name) and a (value) group.
/// - JSON lines (`format: JSON`): `{"accuracy": 0.97, "step": 3}`; numbers or numeric strings.
///
/// Lines are bytes, not strings: invalid UTF-8 and binary junk are read past, never trusted.
public struct MetricsScraper: Sendable {
    enum Format: Sendable {
        case text
        case regexes([MetricRegex])
        case json
    }

    let names: Set<String>
    let format: Format

    public init(metricNames: [String], collector: MetricsCollectorSpec) throws {
        names = Set(metricNames)
        if collector.format == .json {
            format = .json
        } else if !collector.metricsFormat.isEmpty {
            format = .regexes(try collector.metricsFormat.map(MetricRegex.init))
        } else {
            format = .text
        }
    }

    /// Every declared metric reported in `line` (without its newline).
    public func reports(in line: some Collection<UInt8>) -> [MetricReport] {
        let bytes = Array(line)
        let timestamp = RFC3339.leadingTimestamp(bytes)
        switch format {
        case .json:
            return jsonReports(bytes)
        case .regexes(let regexes):
            let text = String(decoding: bytes, as: UTF8.self)
            return regexes.flatMap { $0.reports(in: text, timestamp: timestamp) }.filter { names.contains($0.name) }
        case .text:
            if let first = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }), bytes[first] == UInt8(ascii: "{") {
                let reports = jsonReports(bytes)
                if !reports.isEmpty { return reports }
            }
            return textReports(bytes, timestamp: timestamp)
        }
    }

    // MARK: name=value

    private static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
            || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: "|")
            || b == UInt8(ascii: ".") || b == UInt8(ascii: "/") || b == UInt8(ascii: ":")
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    private func textReports(_ bytes: [UInt8], timestamp: Date?) -> [MetricReport] {
        var reports: [MetricReport] = []
        let equals = UInt8(ascii: "=")
        var i = 0
        while let eq = bytes[i...].firstIndex(of: equals) {
            i = eq + 1
            // The name: the run of name characters before '=' (spaces allowed around '=').
            var end = eq
            while end > 0, Self.isSpace(bytes[end - 1]) { end -= 1 }
            var start = end
            while start > 0, Self.isNameByte(bytes[start - 1]) { start -= 1 }
            guard start < end, let name = declaredName(bytes[start..<end]) else { continue }
            // The value: a number, else a bare word kept as text.
            var v = eq + 1
            while v < bytes.count, Self.isSpace(bytes[v]) { v += 1 }
            if let (value, next) = Self.number(bytes, from: v) {
                reports.append(MetricReport(name: name, value: value, timestamp: timestamp))
                i = next
            } else {
                var w = v
                while w < bytes.count, !Self.isSpace(bytes[w]), bytes[w] != UInt8(ascii: ","), w - v < 64 { w += 1 }
                if w > v {
                    reports.append(MetricReport(name: name, value: nil, text: String(decoding: bytes[v..<w], as: UTF8.self), timestamp: timestamp))
                }
            }
        }
        return reports
    }

    /// The declared metric that a run of name characters names: the whole run, or its tail after
    /// a `.`, `/` or `:` (so `Epoch 3.accuracy=` and `train/loss=` find `accuracy` and `loss`
    /// when those are declared, and `train/loss` when that is).
    private func declaredName(_ run: ArraySlice<UInt8>) -> String? {
        var slice = run
        while !slice.isEmpty {
            let candidate = String(decoding: slice, as: UTF8.self)
            if names.contains(candidate) { return candidate }
            guard let separator = slice.firstIndex(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") }) else { return nil }
            slice = slice[(separator + 1)...]
        }
        return nil
    }

    /// A number at `start`: `[+-]? digits* (. digits+)? ([eE] [+-]? digits+)?` with at least one digit.
    static func number(_ bytes: [UInt8], from start: Int) -> (Double, Int)? {
        func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= 0x30 && bytes[i] <= 0x39 }
        var i = start
        if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
        var digits = 0
        while isDigit(i) { i += 1; digits += 1 }
        if i < bytes.count, bytes[i] == UInt8(ascii: "."), isDigit(i + 1) {
            i += 1
            while isDigit(i) { i += 1; digits += 1 }
        }
        guard digits > 0 else { return nil }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            var j = i + 1
            if j < bytes.count, bytes[j] == UInt8(ascii: "+") || bytes[j] == UInt8(ascii: "-") { j += 1 }
            if isDigit(j) {
                while isDigit(j) { j += 1 }
                i = j
            }
        }
        // A value glued to letters (`3abc`) is not a number.
        if i < bytes.count, isNameLetter(bytes[i]) { return nil }
        guard let value = Double(String(decoding: bytes[start..<i], as: UTF8.self)), value.isFinite else { return nil }
        return (value, i)
    }

    private static func isNameLetter(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "_")
    }

    // MARK: JSON lines

    private func jsonReports(_ bytes: [UInt8]) -> [MetricReport] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return [] }
        // A time or step the store cannot hold (years past 9999, a step of 1e300) is no time or step.
        let seconds: Double? = switch object["timestamp"] {
        case let seconds as NSNumber: seconds.doubleValue
        case let text as String: Double(text) ?? RFC3339.leadingTimestamp(Array(text.utf8))?.timeIntervalSince1970
        default: nil
        }
        let timestamp = seconds.flatMap { (0..<253_402_300_800).contains($0) ? Date(timeIntervalSince1970: $0) : nil }
        let step = ["step", "epoch", "global_step"].lazy.compactMap { key -> Int? in
            switch object[key] {
            case let n as NSNumber:
                let value = n.doubleValue
                return value == value.rounded() && abs(value) <= 9_007_199_254_740_992 ? Int(value) : nil
            case let s as String: return Int(s)
            default: return nil
            }
        }.first
        return object.keys.sorted().compactMap { key in
            guard names.contains(key) else { return nil }
            switch object[key] {
            case let n as NSNumber:
                let value = n.doubleValue
                return value.isFinite
                    ? MetricReport(name: key, value: value, timestamp: timestamp, step: step)
                    : MetricReport(name: key, value: nil, text: "\(value)", timestamp: timestamp, step: step)
            case let s as String:
                let value = Double(s.trimmingCharacters(in: .whitespaces)).flatMap { $0.isFinite ? $0 : nil }
                return MetricReport(name: key, value: value, text: value == nil ? s : nil, timestamp: timestamp, step: step)
            default:
                return nil
            }
        }
    }
}

/// Leading RFC 3339 time stamps: `2026-01-01T00:00:00Z`, `2026-01-01T00:00:00.123+02:00`, and the
/// `2026-01-01 00:00:00,123` that Python's logging writes (read as local time).
enum RFC3339 {
    static func leadingTimestamp(_ b: [UInt8]) -> Date? {
        func digits(_ at: Int, _ count: Int) -> Int? {
            guard at + count <= b.count else { return nil }
            var n = 0
            for i in at..<(at + count) {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                n = n * 10 + Int(b[i] - 0x30)
            }
            return n
        }
        guard b.count >= 19, let year = digits(0, 4), b[4] == UInt8(ascii: "-"), let month = digits(5, 2), b[7] == UInt8(ascii: "-"),
              let day = digits(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "),
              let hour = digits(11, 2), b[13] == UInt8(ascii: ":"), let minute = digits(14, 2), b[16] == UInt8(ascii: ":"),
              let second = digits(17, 2), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",") {
            var scale = 0.1
            i += 1
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                fraction += Double(b[i] - 0x30) * scale
                scale /= 10
                i += 1
            }
        }
        var offset: Int?
        if i < b.count, b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            offset = 0
        } else if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"), let h = digits(i + 1, 2) {
            let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
            let m = (i + 3 < b.count && b[i + 3] == UInt8(ascii: ":")) ? digits(i + 4, 2) : digits(i + 3, 2)
            offset = sign * (h * 3600 + (m ?? 0) * 60)
        }
        let utcSeconds = daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        let localOffset = offset ?? TimeZone.current.secondsFromGMT(for: Date(timeIntervalSince1970: Double(utcSeconds)))
        return Date(timeIntervalSince1970: Double(utcSeconds - localOffset) + fraction)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
