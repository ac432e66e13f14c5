import Foundation
import GRDB

/// The trial's JSON columns as the store writes them (assignments `[{"name":"…","value":"…"}]`, string maps
/// `{"key":"value",…}`, observations `[{"count":…,"latest":…,"max":…,"min":…,"name":"…"}]`), written and read
/// without JSONEncoder and JSONDecoder when every string is plain (printable ASCII to write; no escape but `\/` to
/// read) and every number finite, byte for byte and bit for bit as those write and read them; nil for anything else,
/// which the encoder or decoder then handles as it always did. Each trial that starts and ends writes and reads them.
enum PlainJSON {
    private static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")

    /// The string starting at `at` (its opening quote), valid UTF-8 with no escape but `\/` and no control
    /// character, and the index after its closing quote.
    static func string(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> (String, Int)? {
        guard start < bytes.count, bytes[start] == quote else { return nil }
        var end = start + 1
        var slashes = false
        while end < bytes.count, bytes[end] != quote {
            if bytes[end] == backslash {
                guard end + 1 < bytes.count, bytes[end + 1] == UInt8(ascii: "/") else { return nil }
                slashes = true
                end += 1
            } else if bytes[end] < 0x20 {
                return nil
            }
            end += 1
        }
        guard end < bytes.count else { return nil }
        let body = UnsafeBufferPointer(rebasing: bytes[(start + 1)..<end])
        let text = slashes ? String(validating: Self.unescapingSlashes(body), as: UTF8.self) : String(validating: body, as: UTF8.self)
        return text.map { ($0, end + 1) }
    }

    /// The bytes with each `\/` made `/`.
    private static func unescapingSlashes(_ body: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(body.count)
        var i = 0
        while i < body.count {
            if body[i] == backslash { i += 1 }
            bytes.append(body[i])
            i += 1
        }
        return bytes
    }

    /// Whether `literal` is at `at`; the index after it.
    static func literal(_ literal: StaticString, in bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> Int? {
        let count = literal.utf8CodeUnitCount
        guard start + count <= bytes.count else { return nil }
        for k in 0..<count where bytes[start + k] != literal.utf8Start[k] { return nil }
        return start + count
    }

    /// `text` as JSONEncoder writes it, when it is printable ASCII: quoted, `/` as `\/`; nil when it holds a
    /// quote, a backslash, a control character or anything beyond ASCII.
    static func append(_ text: String, to json: inout String) -> Bool {
        json.append("\"")
        for byte in text.utf8 {
            guard byte >= 0x20, byte < 0x7f, byte != quote, byte != backslash else { return false }
            if byte == UInt8(ascii: "/") { json.append("\\/") } else { json.unicodeScalars.append(Unicode.Scalar(byte)) }
        }
        json.append("\"")
        return true
    }

    /// The column text JSONEncoder (sorted keys) writes for `assignments`, when every string is plain ASCII.
    static func text(_ assignments: [ParameterAssignment]) -> String? {
        var json = "["
        for (index, assignment) in assignments.enumerated() {
            json.append(index == 0 ? #"{"name":"# : #",{"name":"#)
            guard append(assignment.name, to: &json) else { return nil }
            json.append(#","value":"#)
            guard append(assignment.value, to: &json) else { return nil }
            json.append("}")
        }
        return json + "]"
    }

    /// The column text JSONEncoder (sorted keys) writes for `dictionary`, when every string is plain ASCII: keys
    /// in byte order, which is its order for them.
    static func text(_ dictionary: [String: String]) -> String? {
        var json = "{"
        for (index, (key, value)) in dictionary.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }).enumerated() {
            if index > 0 { json.append(",") }
            guard append(key, to: &json) else { return nil }
            json.append(":")
            guard append(value, to: &json) else { return nil }
        }
        return json + "}"
    }

    /// The column text JSONEncoder (sorted keys) writes for an observation, when every name is plain ASCII and every
    /// number finite (the encoder refuses the others): a number as Swift describes it, without a trailing ".0".
    static func text(_ observation: [MetricSummary]) -> String? {
        func number(_ value: Double, to json: inout String) -> Bool {
            guard value.isFinite else { return false }
            let text = value.description
            json.append(contentsOf: text.hasSuffix(".0") ? text.dropLast(2) : Substring(text))
            return true
        }
        var json = "["
        for (index, metric) in observation.enumerated() {
            json.append(index == 0 ? #"{"count":"# : #",{"count":"#)
            json.append(String(metric.count))
            json.append(#","latest":"#)
            guard number(metric.latest, to: &json) else { return nil }
            json.append(#","max":"#)
            guard number(metric.max, to: &json) else { return nil }
            json.append(#","min":"#)
            guard number(metric.min, to: &json) else { return nil }
            json.append(#","name":"#)
            guard append(metric.name, to: &json) else { return nil }
            json.append("}")
        }
        return json + "]"
    }

    /// The JSON number at `at` (strictly JSON's grammar) and the index after it.
    static func number(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> (Substring, Int)? {
        func digits(from i: Int) -> Int {
            var j = i
            while j < bytes.count, bytes[j] >= UInt8(ascii: "0"), bytes[j] <= UInt8(ascii: "9") { j += 1 }
            return j
        }
        var i = start
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count else { return nil }
        if bytes[i] == UInt8(ascii: "0") { i += 1 } else {
            let end = digits(from: i)
            guard end > i else { return nil }
            i = end
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            let end = digits(from: i + 1)
            guard end > i + 1 else { return nil }
            i = end
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            var j = i + 1
            if j < bytes.count, bytes[j] == UInt8(ascii: "+") || bytes[j] == UInt8(ascii: "-") { j += 1 }
            let end = digits(from: j)
            guard end > j else { return nil }
            i = end
        }
        return (Substring(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self), i)
    }

    /// The value of a JSON number as the decoder reads it: nil where the decoder refuses it, which is when it
    /// is out of range, too large (infinite) or too small (a number with a nonzero digit that comes to zero).
    static func double(_ text: Substring) -> Double? {
        guard let value = Double(text), value.isFinite else { return nil }
        if value == 0, text.prefix(while: { $0 != "e" && $0 != "E" }).contains(where: { $0 >= "1" && $0 <= "9" }) { return nil }
        return value
    }

    static func observation(_ bytes: UnsafeBufferPointer<UInt8>) -> [MetricSummary]? {
        guard var i = literal("[", in: bytes, at: 0) else { return nil }
        if literal("]", in: bytes, at: i) == bytes.count { return [] }
        var result: [MetricSummary] = []
        while true {
            guard let a = literal(#"{"count":"#, in: bytes, at: i), let (countText, b) = number(bytes, at: a), let count = Int(countText),
                  let c = literal(#","latest":"#, in: bytes, at: b), let (latestText, d) = number(bytes, at: c), let latest = double(latestText),
                  let e = literal(#","max":"#, in: bytes, at: d), let (maxText, f) = number(bytes, at: e), let max = double(maxText),
                  let g = literal(#","min":"#, in: bytes, at: f), let (minText, h) = number(bytes, at: g), let min = double(minText),
                  let k = literal(#","name":"#, in: bytes, at: h), let (name, end) = string(bytes, at: k),
                  let close = literal("}", in: bytes, at: end) else { return nil }
            result.append(MetricSummary(name: name, min: min, max: max, latest: latest, count: count))
            if let more = literal(",", in: bytes, at: close) {
                i = more
            } else {
                return literal("]", in: bytes, at: close) == bytes.count ? result : nil
            }
        }
    }

    static func assignments(_ bytes: UnsafeBufferPointer<UInt8>) -> [ParameterAssignment]? {
        guard var i = literal("[", in: bytes, at: 0) else { return nil }
        if literal("]", in: bytes, at: i) == bytes.count { return [] }
        var result: [ParameterAssignment] = []
        while true {
            guard let afterName = literal(#"{"name":"#, in: bytes, at: i), let (name, next) = string(bytes, at: afterName),
                  let afterValue = literal(#","value":"#, in: bytes, at: next), let (value, end) = string(bytes, at: afterValue),
                  let close = literal("}", in: bytes, at: end) else { return nil }
            result.append(ParameterAssignment(name: name, value: value))
            if let more = literal(",", in: bytes, at: close) {
                i = more
            } else {
                return literal("]", in: bytes, at: close) == bytes.count ? result : nil
            }
        }
    }

    static func dictionary(_ bytes: UnsafeBufferPointer<UInt8>) -> [String: String]? {
        guard var i = literal("{", in: bytes, at: 0) else { return nil }
        if literal("}", in: bytes, at: i) == bytes.count { return [:] }
        var result: [String: String] = [:]
        while true {
            guard let (key, next) = string(bytes, at: i), let colon = literal(":", in: bytes, at: next),
                  let (value, end) = string(bytes, at: colon), result.updateValue(value, forKey: key) == nil else { return nil }
            if let more = literal(",", in: bytes, at: end) {
                i = more
            } else {
                return literal("}", in: bytes, at: end) == bytes.count ? result : nil
            }
        }
    }
}

extension TrialRecord {
    /// The text of a JSON column holding `value`, as the record's own encoding writes it: PlainJSON's when it can
    /// write it, else the record's JSON encoder's.
    static func columnText(_ value: [ParameterAssignment], _ column: String) throws -> String {
        try PlainJSON.text(value) ?? encoded(value, column)
    }

    static func columnText(_ value: [String: String], _ column: String) throws -> String {
        try PlainJSON.text(value) ?? encoded(value, column)
    }

    static func columnText(_ value: [MetricSummary], _ column: String) throws -> String {
        try PlainJSON.text(value) ?? encoded(value, column)
    }

    private static func encoded(_ value: some Encodable, _ column: String) throws -> String {
        String(decoding: try databaseJSONEncoder(for: column).encode(value), as: UTF8.self)
    }
}
