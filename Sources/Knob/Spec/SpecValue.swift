import Foundation
import Yams

/// A YAML or JSON document as a tree, with the line each node starts on (YAML only), so that
/// problems can say where they are.
public indirect enum SpecValue: Sendable, Hashable {
    case mapping([(key: String, value: SpecValue)], line: Int?)
    case sequence([SpecValue], line: Int?)
    /// A scalar as written; `quoted` when the YAML quoted it (so `"1"` stays a string).
    case scalar(String, quoted: Bool, line: Int?)
    case null(line: Int?)

    public static func == (lhs: SpecValue, rhs: SpecValue) -> Bool {
        switch (lhs, rhs) {
        case (.mapping(let a, _), .mapping(let b, _)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.sequence(let a, _), .sequence(let b, _)): return a == b
        case (.scalar(let a, let qa, _), .scalar(let b, let qb, _)): return a == b && qa == qb
        case (.null, .null): return true
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .mapping(let entries, _):
            hasher.combine(0)
            for entry in entries {
                hasher.combine(entry.key)
                hasher.combine(entry.value)
            }
        case .sequence(let items, _):
            hasher.combine(1)
            hasher.combine(items)
        case .scalar(let text, let quoted, _):
            hasher.combine(2)
            hasher.combine(text)
            hasher.combine(quoted)
        case .null:
            hasher.combine(3)
        }
    }

    public var line: Int? {
        switch self {
        case .mapping(_, let line), .sequence(_, let line), .scalar(_, _, let line), .null(let line): return line
        }
    }

    /// The value under `key` of a mapping.
    public subscript(key: String) -> SpecValue? {
        guard case .mapping(let entries, _) = self else { return nil }
        return entries.first { $0.key == key }?.value
    }

    /// This mapping with the value at `path` (keys of nested mappings) changed by `change`; unchanged where the path is missing.
    public func replacing(_ path: ArraySlice<String>, _ change: (SpecValue) -> SpecValue) -> SpecValue {
        guard let key = path.first else { return change(self) }
        guard case .mapping(var entries, let line) = self, let index = entries.firstIndex(where: { $0.key == key }) else { return self }
        entries[index].value = entries[index].value.replacing(path.dropFirst(), change)
        return .mapping(entries, line: line)
    }

    public func replacing(_ path: [String], _ change: (SpecValue) -> SpecValue) -> SpecValue { replacing(path[...], change) }

    /// The items of a sequence.
    public var items: [SpecValue]? {
        guard case .sequence(let items, _) = self else { return nil }
        return items
    }

    /// What kind of node this is, for messages.
    var kindName: String {
        switch self {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let text, _, _): return "\"\(text.prefix(40))\""
        case .null: return "null"
        }
    }

    /// Parses a YAML or JSON document (a leading byte-order mark is skipped). YAML is read first,
    /// since it reads JSON too and knows each node's line; JSON that YAML cannot read (tabs as
    /// indentation) is read as JSON, without lines. Aliases are expanded within
    /// `limits.maxDocumentNodes` nodes, so a "billion laughs" is refused, not expanded.
    public static func parse(_ text: String, limits: SpecLimits = .default) throws(SpecError) -> SpecValue {
        let text = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        let node: Yams.Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            let trimmed = text.drop { $0.isWhitespace }
            if trimmed.first == "{" || trimmed.first == "[",
               let json = try? JSONDecoder().decode(JSONNode.self, from: Data(text.utf8)).value {
                return try json.checkedSize(limit: limits.maxDocumentNodes)
            }
            let (message, line) = describeYAMLError(error)
            throw SpecError([SpecProblem(path: "", message: "not valid YAML (nor JSON): \(message)", line: line)])
        }
        guard let node else {
            throw SpecError([SpecProblem(path: "", message: "the spec is empty")])
        }
        var budget = limits.maxDocumentNodes
        return try SpecValue(node, budget: &budget, limit: limits.maxDocumentNodes)
    }

    /// Converts a composed YAML tree, counting nodes against `budget` (aliases expand to copies
    /// of what they name, so the count is of the expanded tree).
    init(_ node: Yams.Node, budget: inout Int, limit: Int) throws(SpecError) {
        budget -= 1
        let line = node.mark.map { $0.line }
        guard budget >= 0 else {
            throw SpecError([SpecProblem(path: "", message: "the document expands to more than \(limit) "
                                         + "nodes (through YAML aliases?); a spec is far smaller", line: line)])
        }
        switch node {
        case .mapping(let mapping):
            var entries: [(key: String, value: SpecValue)] = []
            entries.reserveCapacity(mapping.count)
            for (key, value) in mapping {
                guard case .scalar(let scalar) = key else {
                    throw SpecError([SpecProblem(path: "", message: "a mapping key must be a plain value, found "
                                                 + (key.mapping != nil ? "a mapping" : key.sequence != nil ? "a list" : "an alias"),
                                                 line: key.mark?.line ?? line)])
                }
                entries.append((key: scalar.string, value: try SpecValue(value, budget: &budget, limit: limit)))
            }
            self = .mapping(entries, line: line)
        case .sequence(let sequence):
            var items: [SpecValue] = []
            items.reserveCapacity(sequence.count)
            for item in sequence { items.append(try SpecValue(item, budget: &budget, limit: limit)) }
            self = .sequence(items, line: line)
        case .scalar(let scalar):
            if scalar.style == .plain, ["", "~", "null", "Null", "NULL"].contains(scalar.string) {
                self = .null(line: line)
            } else {
                self = .scalar(scalar.string, quoted: scalar.style != .plain, line: line)
            }
        case .alias:
            self = .null(line: line)
        }
    }

    /// Number of nodes in the tree.
    var nodeCount: Int {
        switch self {
        case .mapping(let entries, _): return entries.reduce(1) { $0 + $1.value.nodeCount }
        case .sequence(let items, _): return items.reduce(1) { $0 + $1.nodeCount }
        case .scalar, .null: return 1
        }
    }

    /// `self`, or an error when it has more than `limit` nodes.
    func checkedSize(limit: Int) throws(SpecError) -> SpecValue {
        let count = nodeCount
        guard count <= limit else {
            throw SpecError([SpecProblem(path: "", message: "the document has \(count) nodes, more than \(limit); a spec is far smaller")])
        }
        return self
    }

    /// The tree as plain JSON-compatible values (for manifests and storage).
    public var jsonObject: Any {
        switch self {
        case .mapping(let entries, _):
            return Dictionary(entries.map { ($0.key, $0.value.jsonObject) }, uniquingKeysWith: { _, last in last })
        case .sequence(let items, _):
            return items.map(\.jsonObject)
        case .scalar(let text, let quoted, _):
            if quoted { return text }
            if let n = Int(text) { return n }
            if let x = Double(text), x.isFinite { return x }
            if ["true", "True", "TRUE"].contains(text) { return true }
            if ["false", "False", "FALSE"].contains(text) { return false }
            return text
        case .null:
            return NSNull()
        }
    }
}

extension SpecValue: Codable {
    public init(from decoder: any Decoder) throws {
        self = try JSONNode(from: decoder).value
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .mapping(let entries, _):
            var container = encoder.container(keyedBy: DynamicKey.self)
            for entry in entries { try container.encode(entry.value, forKey: DynamicKey(entry.key)) }
        case .sequence(let items, _):
            var container = encoder.unkeyedContainer()
            for item in items { try container.encode(item) }
        case .scalar(let text, let quoted, _):
            var container = encoder.singleValueContainer()
            if !quoted, let n = Int(text) {
                try container.encode(n)
            } else if !quoted, let x = Double(text), x.isFinite {
                try container.encode(x)
            } else if !quoted, text == "true" || text == "false" {
                try container.encode(text == "true")
            } else {
                try container.encode(text)
            }
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        }
    }
}

/// Decodes any JSON into a `SpecValue` (JSON carries no line numbers through `JSONDecoder`).
private struct JSONNode: Decodable {
    let value: SpecValue

    init(from decoder: any Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: DynamicKey.self) {
            // JSONDecoder does not keep key order; sort for a stable tree.
            value = .mapping(try keyed.allKeys.sorted { $0.stringValue < $1.stringValue }.map {
                (key: $0.stringValue, value: try keyed.decode(JSONNode.self, forKey: $0).value)
            }, line: nil)
        } else if var unkeyed = try? decoder.unkeyedContainer() {
            var items: [SpecValue] = []
            while !unkeyed.isAtEnd { items.append(try unkeyed.decode(JSONNode.self).value) }
            value = .sequence(items, line: nil)
        } else {
            let single = try decoder.singleValueContainer()
            if single.decodeNil() {
                value = .null(line: nil)
            } else if let b = try? single.decode(Bool.self) {
                value = .scalar(b ? "true" : "false", quoted: false, line: nil)
            } else if let n = try? single.decode(Int.self) {
                value = .scalar(String(n), quoted: false, line: nil)
            } else if let x = try? single.decode(Double.self) {
                value = .scalar(String(describing: x), quoted: false, line: nil)
            } else {
                value = .scalar(try single.decode(String.self), quoted: true, line: nil)
            }
        }
    }
}

struct DynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A YAML error as a sentence for a person, and the line it is on.
private func describeYAMLError(_ error: any Error) -> (String, Int?) {
    guard let error = error as? YamlError else { return ("the text cannot be read", nil) }
    switch error {
    case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
         .composer(let context, let problem, let mark, _):
        if problem.hasPrefix("Maximum nesting level") {
            return ("nested more than 1000 levels deep, line \(mark.line) column \(mark.column)", mark.line)
        }
        let around = context.map { " (\($0.text) on line \($0.mark.line))" } ?? ""
        return ("\(problem)\(around), line \(mark.line) column \(mark.column)", mark.line)
    case .reader(let problem, let offset, _, _):
        return ("\(problem)\(offset.map { " at character \($0)" } ?? "")", nil)
    case .duplicatedKeysInMapping(let duplicates, let context):
        return ("the key\(duplicates.count == 1 ? "" : "s") \(duplicates.sorted().joined(separator: ", ")) appear twice in one mapping, "
                + "line \(context.mark.line)", context.mark.line)
    case .memory:
        return ("the document is too large to read", nil)
    default:
        return ("the text cannot be read", nil)
    }
}

extension SpecValue {
    /// The tree as YAML text, keys in their order.
    public func yamlText() throws -> String {
        try Yams.serialize(node: yamlNode)
    }

    private var yamlNode: Yams.Node {
        switch self {
        case .mapping(let entries, _):
            return .mapping(Yams.Node.Mapping(entries.map { (Yams.Node($0.key), $0.value.yamlNode) }))
        case .sequence(let items, _):
            return .sequence(Yams.Node.Sequence(items.map(\.yamlNode)))
        case .scalar(let text, let quoted, _):
            return .scalar(Yams.Node.Scalar(text, .implicit, quoted ? .doubleQuoted : .plain))
        case .null:
            return .scalar(Yams.Node.Scalar("null"))
        }
    }
}
