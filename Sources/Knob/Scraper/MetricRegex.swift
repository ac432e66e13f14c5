import Foundation

/// A custom `metricsFormat` regex: two top-level capture groups, the metric name then its value
/// (groups nested inside them, as in `([\w|-]+)\s*=\s*((-?\d+)(\.\d+)?)`, are allowed).
public struct MetricRegex: @unchecked Sendable {
    public let pattern: String
    let regex: NSRegularExpression
    /// Capture index of the name and of the value.
    let nameGroup: Int
    let valueGroup: Int

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public init(_ pattern: String) throws {
        do {
            // Katib's regexes are Go's (RE2): accept its (?P<name>…) named groups.
            regex = try NSRegularExpression(pattern: pattern.replacingOccurrences(of: "(?P<", with: "(?<"))
        } catch {
            throw Invalid(description: "\"\(pattern)\" is not a valid regular expression")
        }
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
        let range = NSRange(line.startIndex..., in: line)
        return regex.matches(in: line, range: range).compactMap { match in
            guard let nameRange = Range(match.range(at: nameGroup), in: line),
                  let valueRange = Range(match.range(at: valueGroup), in: line) else { return nil }
            let valueText = line[valueRange].trimmingCharacters(in: .whitespaces)
            guard !valueText.isEmpty else { return nil }
            let value = Double(valueText).flatMap { $0.isFinite ? $0 : nil }
            return MetricReport(name: String(line[nameRange]), value: value, text: value == nil ? valueText : nil, timestamp: timestamp)
        }
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
                // A ']' right after '[' or '[^' is a literal.
                if i + 1 < chars.count, chars[i + 1] == "^" { i += 1 }
                if i + 1 < chars.count, chars[i + 1] == "]" { i += 1 }
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
