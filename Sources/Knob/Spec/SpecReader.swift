import Foundation
/// Walks a `SpecValue` tree, reading typed fields and collecting every problem with its path.
final class SpecReader {
    private(set) var problems: [SpecProblem] = []
    let limits: SpecLimits

    init(limits: SpecLimits = .default) {
        self.limits = limits
    }

    func problem(_ path: String, _ message: String, at node: SpecValue? = nil) {
        problems.append(SpecProblem(path: path, message: message, line: node?.line))
    }

    /// The entries of a mapping; reports a problem for anything else, and for keys not in `known`.
    func mapping(_ node: SpecValue?, _ path: String, known: [String], ignored: Set<String> = []) -> SpecValue? {
        guard let node else { return nil }
        if case .null = node { return nil }
        guard case .mapping(let entries, _) = node else {
            problem(path, "must be a mapping, found \(node.kindName)", at: node)
            return nil
        }
        for entry in entries where !known.contains(entry.key) && !ignored.contains(entry.key) {
            let hint = closest(entry.key, in: known).map { "; did you mean \($0)?" } ?? ""
            problem(join(path, entry.key), "unknown field\(hint)", at: entry.value)
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

    /// A number, written as a number or as a string (as Katib writes them).
    func number(_ node: SpecValue?, _ path: String, required: Bool = false) -> Double? {
        guard let text = string(node, path, required: required) else { return nil }
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite else {
            problem(path, "\"\(text)\" is not a number", at: node)
            return nil
        }
        return value
    }

    /// A whole number, written as a number or as a string.
    func integer(_ node: SpecValue?, _ path: String, required: Bool = false) -> Int? {
        guard let text = string(node, path, required: required) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let value = Int(trimmed) { return value }
        if let value = Double(trimmed), value == value.rounded(), abs(value) < 1e15 { return Int(value) }
        problem(path, "\"\(text)\" is not a whole number", at: node)
        return nil
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



/// The candidate within edit distance 2 of `word`, if there is one.
func closest(_ word: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
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
