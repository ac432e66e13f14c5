import Foundation
import RE2Shim

/// A custom `metricsFormat` regex in Katib's syntax, Go's regexp (RE2): two top-level capture
/// groups, the metric name then its value (groups nested inside them, as in
/// `([\w|-]+)\s*=\s*((-?\d+)(\.\d+)?)`, are allowed). Matched by RE2 itself, so a filter means
/// what it means to Katib (a `{` that starts no repetition is a literal, `\Q…\E` quotes, `\pL`
/// and `[[:alpha:]]` are classes), and in time linear in the line whatever the pattern.
public struct MetricRegex: Sendable {
    public let pattern: String
    let compiled: CompiledRegex
    /// Capture index of the name and of the value.
    let nameGroup: Int
    let valueGroup: Int

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public init(_ pattern: String) throws {
        // Go also reads (?<name>…), which this RE2 reads only as (?P<name>…).
        let translated = pattern.replacingOccurrences(of: "(?<", with: "(?P<")
            .replacingOccurrences(of: "(?P<=", with: "(?<=").replacingOccurrences(of: "(?P<!", with: "(?<!")
        compiled = try CompiledRegex(translated, original: pattern)
        let topLevel = Self.topLevelGroups(pattern)
        guard topLevel.count == 2 else {
            throw Invalid(description: "\"\(pattern)\" must have exactly two top-level groups, (name) and (value); it has \(topLevel.count)")
        }
        self.pattern = pattern
        nameGroup = topLevel[0]
        valueGroup = topLevel[1]
    }

    /// Reports in one line.
    func reports(in line: String, timestamp: Date?) -> [MetricReport] {
        var reports: [MetricReport] = []
        let bytes = Array(line.utf8)
        for groups in compiled.matches(in: bytes, groups: valueGroup) {
            guard let name = groups[nameGroup], let value = groups[valueGroup] else { continue }
            let valueText = String(decoding: bytes[value], as: UTF8.self).trimmingCharacters(in: .whitespaces)
            guard !valueText.isEmpty else { continue }
            let number = Double(valueText).flatMap { $0.isFinite ? $0 : nil }
            reports.append(MetricReport(name: String(decoding: bytes[name], as: UTF8.self), value: number,
                                        text: number == nil ? valueText : nil, timestamp: timestamp))
        }
        return reports
    }

    /// Capture indices (1-based, in order of their opening parenthesis) of the groups that no
    /// other capturing group encloses.
    static func topLevelGroups(_ pattern: String) -> [Int] {
        var result: [Int] = []
        var stack: [Bool] = []  // for each open group: is it capturing?
        var captureIndex = 0
        let chars = Array(pattern)
        var i = 0
        var inClass = false
        while i < chars.count {
            let c = chars[i]
            if c == "\\" {
                // \Q…\E quotes everything up to \E (or the end).
                if i + 1 < chars.count, chars[i + 1] == "Q" {
                    i += 2
                    while i < chars.count, !(chars[i] == "\\" && i + 1 < chars.count && chars[i + 1] == "E") { i += 1 }
                }
                i += 2
                continue
            }
            if inClass {
                if c == "]" { inClass = false }
                i += 1
                continue
            }
            switch c {
            case "[":
                inClass = true
                // A ']' right after '[' or '[^' is a literal; [:alpha:] inside a class is one item.
                if i + 1 < chars.count, chars[i + 1] == "^" { i += 1 }
                if i + 1 < chars.count, chars[i + 1] == "]" { i += 1 }
                var j = i + 1
                while j < chars.count, chars[j] != "]" {
                    if chars[j] == "[", j + 1 < chars.count, chars[j + 1] == ":",
                       let close = (j + 2..<chars.count).first(where: { chars[$0] == "]" && chars[$0 - 1] == ":" }) {
                        j = close + 1
                        continue
                    }
                    if chars[j] == "\\" { j += 1 }
                    j += 1
                }
                i = j
                inClass = false
            case "(":
                var capturing = true
                if i + 1 < chars.count, chars[i + 1] == "?" {
                    let next = i + 2 < chars.count ? chars[i + 2] : " "
                    let afterNext = i + 3 < chars.count ? chars[i + 3] : " "
                    capturing = (next == "<" && afterNext != "=" && afterNext != "!") || next == "P" || next == "'"
                }
                if capturing {
                    captureIndex += 1
                    if !stack.contains(true) { result.append(captureIndex) }
                }
                stack.append(capturing)
            case ")":
                if !stack.isEmpty { stack.removeLast() }
            default:
                break
            }
            i += 1
        }
        return result
    }
}

/// An RE2 program. RE2's matching methods are const and thread-safe, and the program is never
/// changed after it is compiled: sharing it across threads is safe.
final class CompiledRegex: @unchecked Sendable {
    private let program: OpaquePointer
    let groupCount: Int

    init(_ pattern: String, original: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        var offset = -1
        let bytes = Array(pattern.utf8)
        guard let program = bytes.withUnsafeBufferPointer({ buffer in
            buffer.withMemoryRebound(to: CChar.self) { knob_regex_compile($0.baseAddress, $0.count, &error, &offset) }
        }) else {
            let message = error.map { String(cString: $0) } ?? "invalid"
            free(error)
            // RE2's message ends with the part at fault after ": "; say where it is instead.
            let what = message.split(separator: ":", maxSplits: 1).first.map(String.init) ?? message
            let position = offset >= 0 ? " at character \(String(decoding: bytes.prefix(offset), as: UTF8.self).count + 1)" : ""
            throw MetricRegex.Invalid(description: "\"\(original)\" is not a valid regular expression in Katib's (Go's RE2) syntax: \(what)\(position)")
        }
        self.program = program
        groupCount = Int(knob_regex_group_count(program))
    }

    deinit {
        knob_regex_free(program)
    }

    /// Every match in `text`, left to right, not overlapping: for each, the byte ranges of groups
    /// 0…`groups` (nil for a group that took no part).
    func matches(in text: [UInt8], groups: Int) -> [[Range<Int>?]] {
        let groups = Swift.min(groups, groupCount)
        var offsets = [Int](repeating: -1, count: 2 * (groups + 1))
        var result: [[Range<Int>?]] = []
        var start = 0
        text.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                while start <= chars.count, offsets.withUnsafeMutableBufferPointer({
                    knob_regex_search(program, chars.baseAddress, chars.count, start, $0.baseAddress, Int32(groups)) == 1
                }) {
                    result.append((0...groups).map { g in offsets[2 * g] >= 0 ? offsets[2 * g]..<offsets[2 * g + 1] : nil })
                    let end = offsets[1]
                    // After an empty match, move on by one character (not into the middle of one).
                    if end > offsets[0] {
                        start = end
                    } else {
                        var next = end + 1
                        while next < chars.count, UInt8(bitPattern: chars[next]) & 0xC0 == 0x80 { next += 1 }
                        start = next
                    }
                }
            }
        }
        return result
    }
}
