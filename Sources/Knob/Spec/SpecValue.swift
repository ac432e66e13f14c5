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

    /// What kind of node this is, for messages.
    var kindName: String {
        switch self {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let text, _, _): return "\"\(text.prefix(40))\""
        case .null: return "null"
        }
    }

    /// Parses a YAML or JSON document.
    public static func parse(_ text: String) throws(SpecError) -> SpecValue {
        let trimmed = text.drop { $0.isWhitespace }
        if trimmed.first == "{" || trimmed.first == "[" {
            do {
                return try JSONDecoder().decode(JSONNode.self, from: Data(text.utf8)).value
            } catch {
                throw SpecError([SpecProblem(path: "", message: "not valid JSON: \(describeJSONError(error))")])
            }
        }
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw SpecError([SpecProblem(path: "", message: "the spec is empty")])
            }
            return SpecValue(node)
        } catch let error as SpecError {
            throw error
        } catch {
            throw SpecError([SpecProblem(path: "", message: "not valid YAML: \(error)")])
        }
    }

    init(_ node: Yams.Node) {
        let line = node.mark.map { $0.line }
        switch node {
        case .mapping(let mapping):
            self = .mapping(mapping.map { (key: $0.key.string ?? "\($0.key)", value: SpecValue($0.value)) }, line: line)
        case .sequence(let sequence):
            self = .sequence(sequence.map(SpecValue.init), line: line)
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

private func describeJSONError(_ error: any Error) -> String {
    if case DecodingError.dataCorrupted(let context) = error {
        let underlying = (context.underlyingError as? NSError)?.userInfo[NSDebugDescriptionErrorKey] as? String
        return underlying ?? context.debugDescription
    }
    return "\(error)"
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
