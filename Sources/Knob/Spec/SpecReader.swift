import Foundation
/// Walks a `SpecValue` tree, reading typed fields and collecting every problem with its path.
final class SpecReader {
    private(set) var problems: [SpecProblem] = []
    let limits: SpecLimits
    /// The document, to place problems that name a path but no node.
    let root: SpecValue?

    init(limits: SpecLimits = .default, root: SpecValue? = nil) {
        self.limits = limits
        self.root = root
    }

    /// Records a problem at `path`, on the line of `node`, else of the deepest node of the
    /// document that `path` reaches.
    func problem(_ path: String, _ message: String, at node: SpecValue? = nil) {
        guard problems.count < Self.maxProblems else {
            unlisted += 1
            return
        }
        problems.append(SpecProblem(path: path, message: message, line: node?.line ?? line(of: path)))
    }

    /// Problems listed at most: past them a hostile spec's list would only grow the answer.
    static let maxProblems = 200
    /// Problems found past `maxProblems`.
    private(set) var unlisted = 0

    /// The line of the deepest node on `path` (`spec.parameters[1].feasibleSpace`) that exists.
    func line(of path: String) -> Int? {
        guard var node = root else { return nil }
        var line = node.line
        for step in pathSteps(path) {
            let next: SpecValue?
            switch (step, node) {
            case (.key(let key), .mapping):
                next = node[key]
            case (.index(let i), .sequence(let items, _)):
                next = items.indices.contains(i) ? items[i] : nil
            default:
                next = nil
            }
            guard let next else { break }
            node = next
            line = next.line ?? line
        }
        return line
    }

    private enum PathStep {
        case key(String)
        case index(Int)
    }

    /// `a.b[2].c` as its keys and indices.
    private func pathSteps(_ path: String) -> [PathStep] {
        var steps: [PathStep] = []
        for part in path.split(separator: ".", omittingEmptySubsequences: true) {
            var rest = Substring(part)
            if let bracket = rest.firstIndex(of: "[") {
                if bracket > rest.startIndex { steps.append(.key(String(rest[..<bracket]))) }
                rest = rest[bracket...]
                while rest.first == "[", let close = rest.firstIndex(of: "]") {
                    guard let index = Int(rest[rest.index(after: rest.startIndex)..<close]) else { return steps }
                    steps.append(.index(index))
                    rest = rest[rest.index(after: close)...]
                }
            } else {
                steps.append(.key(String(rest)))
            }
        }
        return steps
    }

    /// The entries of a mapping; reports a problem for anything else, and for keys not in `known`.
    func mapping(_ node: SpecValue?, _ path: String, known: [String], ignored: Set<String> = []) -> SpecValue? {
        guard let node else { return nil }
        if case .null = node { return nil }
        guard case .mapping(let entries, _) = node else {
            problem(path, "must be a mapping, found \(node.kindName)", at: node)
            return nil
        }
        var seen = Set<String>()
        for entry in entries {
            if !seen.insert(entry.key).inserted {
                problem(join(path, entry.key), "is given twice; keep one", at: entry.value)
            } else if !known.contains(entry.key) && !ignored.contains(entry.key) {
                let hint = closest(entry.key, in: known).map { "; did you mean \($0)?" } ?? ""
                problem(join(path, entry.key), "unknown field\(hint)", at: entry.value)
            }
        }
        return node
    }

    /// The items of a list (none when absent).
    func sequence(_ node: SpecValue?, _ path: String) -> [SpecValue] {
        guard let node else { return [] }
        switch node {
        case .null: return []
        case .sequence(let items, _): return items
        default:
            problem(path, "must be a list, found \(node.kindName)", at: node)
            return []
        }
    }

    /// A string field; `required` reports its absence.
    func string(_ node: SpecValue?, _ path: String, required: Bool = false) -> String? {
        switch node {
        case .scalar(let text, _, _)?:
            if text.isEmpty, required { problem(path, "must not be empty", at: node) }
            return text
        case nil, .null?:
            if required { problem(path, "is required") }
            return nil
        case let other?:
            problem(path, "must be a string, found \(other.kindName)", at: other)
            return nil
        }
    }

    /// A finite decimal number, written as a number or as a string (as Katib writes them); hex,
    /// `inf`, `nan` and booleans are not numbers.
    func number(_ node: SpecValue?, _ path: String, required: Bool = false) -> Double? {
        guard let text = string(node, path, required: required) else { return nil }
        guard let value = parseDecimal(text.trimmingCharacters(in: .whitespaces)) else {
            problem(path, "\"\(text.prefix(40))\" is not a number", at: node)
            return nil
        }
        return value
    }

    /// A whole number within `range` (±2^53 unless given), written as a number or as a string.
    func integer(_ node: SpecValue?, _ path: String, required: Bool = false,
                 in range: ClosedRange<Int> = -SpecLimits.maxIntegerMagnitude...SpecLimits.maxIntegerMagnitude,
                 hint: String = "") -> Int? {
        guard let text = string(node, path, required: required) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let value = parseDecimal(trimmed), value == value.rounded() else {
            problem(path, "\"\(text.prefix(40))\" is not a whole number", at: node)
            return nil
        }
        guard value >= Double(range.lowerBound), value <= Double(range.upperBound) else {
            problem(path, "\(trimmed.prefix(40)) is out of range: it must be within \(range.lowerBound)...\(range.upperBound)\(hint)", at: node)
            return nil
        }
        // Exact for every whole number up to 2^53; larger ones were refused above or are exact as written.
        return Int(trimmed) ?? Int(value)
    }

    /// A boolean (`true`/`false`, also as strings).
    func bool(_ node: SpecValue?, _ path: String) -> Bool? {
        guard let text = string(node, path) else { return nil }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default:
            problem(path, "\"\(text)\" is not true or false", at: node)
            return nil
        }
    }

    /// One of `allowed` (compared exactly, as Kubernetes does), or a problem listing them.
    func choice(_ node: SpecValue?, _ path: String, allowed: [String], required: Bool = false) -> String? {
        guard let text = string(node, path, required: required) else { return nil }
        guard allowed.contains(text) else {
            let hint = allowed.first { $0.lowercased() == text.lowercased() }.map { "; did you mean \($0)?" } ?? ""
            problem(path, "\"\(text)\" is not one of \(allowed.joined(separator: ", "))\(hint)", at: node)
            return nil
        }
        return text
    }

    func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }
}



/// A number written in decimal (`12`, `-0.5`, `.98`, `1e-3`, `+3`), finite; `nil` for anything
/// else, hex and `inf` included (which Swift's `Double(_:)` would take).
func parseDecimal(_ text: String) -> Double? {
    var digits = 0, sawDot = false, sawExponent = false, exponentDigits = 0
    var previous: UInt8 = 0
    for (i, c) in text.utf8.enumerated() {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            if sawExponent { exponentDigits += 1 } else { digits += 1 }
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard i == 0 || previous == UInt8(ascii: "e") || previous == UInt8(ascii: "E") else { return nil }
        case UInt8(ascii: "."):
            guard !sawDot, !sawExponent else { return nil }
            sawDot = true
        case UInt8(ascii: "e"), UInt8(ascii: "E"):
            guard !sawExponent, digits > 0 else { return nil }
            sawExponent = true
        default:
            return nil
        }
        previous = c
    }
    guard digits > 0, !sawExponent || exponentDigits > 0, let value = Double(text), value.isFinite else { return nil }
    return value
}

/// The candidate within edit distance 2 of `word`, if there is one.
public func closest(_ word: String, in candidates: [String]) -> String? {
    // Names are short: a long word has no near candidate worth the quadratic comparison.
    guard word.count <= 64 else { return nil }
    let scored = candidates.filter { abs($0.count - word.count) <= 2 }.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= 2 else { return nil }
    return best.0
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
