import Foundation

/// A JSON document as a tree that keeps every number as the JSON writes it, so that the YAML made
/// from it says exactly what the JSON says: the same keys in the same order, the same digits, the
/// same timestamps.
indirect enum JSONTree: Equatable {
    case object([(key: String, value: JSONTree)])
    case array([JSONTree])
    case string(String)
    /// A number as written, e.g. `0.0005543999816845725` or `1e-05`.
    case number(String)
    case bool(Bool)
    case null

    static func == (lhs: JSONTree, rhs: JSONTree) -> Bool {
        switch (lhs, rhs) {
        case (.object(let a), .object(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.array(let a), .array(let b)): return a == b
        case (.string(let a), .string(let b)), (.number(let a), .number(let b)): return a == b
        case (.bool(let a), .bool(let b)): return a == b
        case (.null, .null): return true
        default: return false
        }
    }

    /// Parses JSON text (as `JSONEncoder` writes it; any valid JSON is read).
    init(json data: Data) throws {
        var parser = Parser(bytes: Array(data))
        parser.skipSpace()
        self = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.index == parser.bytes.count else { throw parser.error("text after the end of the document") }
    }

    /// The tree as YAML (block style, a document with no `---`), ending with a newline.
    var yaml: String {
        (isEmptyContainer ? [YAMLWriter.inline(self)] : YAMLWriter.block(self)).joined(separator: "\n") + "\n"
    }

    fileprivate var isEmptyContainer: Bool {
        switch self {
        case .object(let entries): return entries.isEmpty
        case .array(let items): return items.isEmpty
        default: return false
        }
    }

    struct SyntaxError: Error, CustomStringConvertible {
        var offset: Int
        var problem: String
        var description: String { "not valid JSON at byte \(offset): \(problem)" }
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        func error(_ problem: String) -> SyntaxError { SyntaxError(offset: index, problem: problem) }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func expect(_ literal: String) throws {
            let expected = Array(literal.utf8)
            guard index + expected.count <= bytes.count, Array(bytes[index..<index + expected.count]) == expected else {
                throw error("expected \(literal)")
            }
            index += expected.count
        }

        mutating func value(depth: Int) throws -> JSONTree {
            guard depth < 512 else { throw error("nested too deeply") }
            guard index < bytes.count else { throw error("unexpected end") }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var entries: [(key: String, value: JSONTree)] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return .object(entries)
                }
                while true {
                    skipSpace()
                    let key = try string()
                    skipSpace()
                    try expect(":")
                    skipSpace()
                    entries.append((key: key, value: try value(depth: depth + 1)))
                    skipSpace()
                    guard index < bytes.count else { throw error("unexpected end in an object") }
                    index += 1
                    if bytes[index - 1] == UInt8(ascii: "}") { return .object(entries) }
                    guard bytes[index - 1] == UInt8(ascii: ",") else { throw error("expected , or } in an object") }
                }
            case UInt8(ascii: "["):
                index += 1
                var items: [JSONTree] = []
                skipSpace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(items)
                }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard index < bytes.count else { throw error("unexpected end in an array") }
                    index += 1
                    if bytes[index - 1] == UInt8(ascii: "]") { return .array(items) }
                    guard bytes[index - 1] == UInt8(ascii: ",") else { throw error("expected , or ] in an array") }
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                try expect("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expect("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try expect("null")
                return .null
            default:
                return .number(try number())
            }
        }

        mutating func number() throws -> String {
            let start = index
            while index < bytes.count, "+-0123456789.eE".utf8.contains(bytes[index]) { index += 1 }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            guard !text.isEmpty, Double(text) != nil else { throw error("expected a value") }
            return text
        }

        mutating func string() throws -> String {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a string") }
            index += 1
            var scalars = String.UnicodeScalarView()
            var run = index
            func flush(_ end: Int) { scalars.append(contentsOf: String(decoding: bytes[run..<end], as: UTF8.self).unicodeScalars) }
            while true {
                guard index < bytes.count else { throw error("unterminated string") }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    flush(index)
                    index += 1
                    return String(scalars)
                }
                guard byte == UInt8(ascii: "\\") else {
                    index += 1
                    continue
                }
                flush(index)
                index += 1
                guard index < bytes.count else { throw error("unterminated escape") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code), index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                        index += 2
                        let low = try hex4()
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                default: throw error("unknown escape")
                }
                run = index
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard index + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16) else {
                throw error("expected four hex digits")
            }
            index += 4
            return code
        }
    }
}

/// Writes a `JSONTree` as block-style YAML that YAML 1.1 and 1.2 readers (PyYAML, Go's yaml, Yams)
/// read back as the same data: strings that would read as something else are quoted, and numbers
/// keep their digits.
enum YAMLWriter {
    /// The lines of a non-empty mapping or list, not indented.
    static func block(_ tree: JSONTree) -> [String] {
        var lines: [String] = []
        switch tree {
        case .object(let entries):
            for (key, value) in entries {
                let key = scalarText(key)
                if isBlock(value) {
                    lines.append("\(key):")
                    lines += block(value).map(indented)
                } else if case .string(let text) = value, let literal = literalBlock(text) {
                    lines.append("\(key): \(literal.header)")
                    lines += literal.lines.map(indented)
                } else {
                    lines.append("\(key): \(inline(value))")
                }
            }
        case .array(let items):
            for item in items {
                if isBlock(item) {
                    let inner = block(item)
                    lines.append("- " + inner[0])
                    lines += inner.dropFirst().map(indented)
                } else if case .string(let text) = item, let literal = literalBlock(text) {
                    lines.append("- \(literal.header)")
                    lines += literal.lines.map(indented)
                } else {
                    lines.append("- " + inline(item))
                }
            }
        default:
            lines.append(inline(tree))
        }
        return lines
    }

    /// A value on one line: a scalar, `{}` or `[]`.
    static func inline(_ tree: JSONTree) -> String {
        switch tree {
        case .object: return "{}"
        case .array: return "[]"
        case .string(let text): return scalarText(text)
        case .number(let text): return number(text)
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        }
    }

    private static func isBlock(_ tree: JSONTree) -> Bool {
        switch tree {
        case .object(let entries): return !entries.isEmpty
        case .array(let items): return !items.isEmpty
        default: return false
        }
    }

    private static func indented(_ line: String) -> String { line.isEmpty ? line : "  " + line }

    /// A JSON number for YAML: the same digits; an exponent form gets a `.0` (`1e-05` → `1.0e-05`),
    /// which YAML 1.1 readers such as PyYAML need to see a number rather than a string.
    static func number(_ text: String) -> String {
        guard !text.contains("."), let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return text }
        return text[..<e] + ".0" + text[e...]
    }

    /// Multi-line text as a literal block (`|` or `|-`), when it can be one exactly.
    private static func literalBlock(_ text: String) -> (header: String, lines: [String])? {
        guard text.contains("\n"), !text.hasSuffix("\n\n"), text.unicodeScalars.allSatisfy({ $0 == "\n" || $0 == "\t" || isPrintable($0) }),
              let first = text.first, first != " ", first != "\t", first != "\n" else { return nil }
        let keepsNewline = text.hasSuffix("\n")
        let body = keepsNewline ? String(text.dropLast()) : text
        return (keepsNewline ? "|" : "|-", body.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
    }

    /// Words that YAML 1.1 or 1.2 reads as booleans or null when left unquoted.
    private static let reservedWords: Set<String> = ["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", "=", "<<"]

    /// A string as a plain scalar when it reads back as that same string, else double-quoted.
    static func scalarText(_ text: String) -> String {
        isPlainSafe(text) ? text : quoted(text)
    }

    private static func isPlainSafe(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, let last = text.unicodeScalars.last else { return false }
        if "-?:,[]{}#&*!|>'\"%@` \t".unicodeScalars.contains(first) || last == " " || last == "\t" { return false }
        // Numbers, timestamps, .inf and .nan all start this way.
        if ("0"..."9").contains(first) || first == "+" || first == "." { return false }
        if text.contains(": ") || text.contains(" #") || text.hasSuffix(":") || text.contains("\t") { return false }
        if reservedWords.contains(text.lowercased()) { return false }
        return text.unicodeScalars.allSatisfy(isPrintable)
    }

    private static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value >= 0x20 && value != 0x7F && !(0x80...0x9F).contains(value)
            && value != 0x2028 && value != 0x2029 && value != 0xFEFF
    }

    /// A double-quoted scalar (JSON's escapes, which YAML shares).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if isPrintable(scalar) {
                    out.unicodeScalars.append(scalar)
                } else {
                    out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
                }
            }
        }
        return out + "\""
    }
}
