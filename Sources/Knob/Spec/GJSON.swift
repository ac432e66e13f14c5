import Foundation

/// A GJSON path (the syntax of github.com/tidwall/gjson), the subset Katib's trial conditions use,
/// evaluated over JSON as `JSONSerialization` gives it (`[String: Any]`, `[Any]`, `String`, `NSNumber`,
/// `Bool`, `NSNull`).
///
/// Supported: keys separated by `.` (`\` escapes the next character: `fav\.movie`), an array index
/// (`items.0`), `#` (an array's length at the end of a path; before `.rest`, `rest` over each item),
/// queries `#(path op value)` (the first matching item) and `#(path op value)#` (all of them, an array;
/// before `.rest`, `rest` over each match) with `==` (or `=`), `!=`, `<`, `<=`, `>`, `>=`, `%` (like,
/// with `*` and `?`) and `!%`, a quoted string, a number, `true`, `false` or `null` as the value, or no
/// operator (the path exists); queries inside queries; `|` (the rest of the path applies to the result
/// as a whole, ending every `#` and `#(...)#` before it); `@this`; and multipaths `[path,path]` (an array
/// of the paths' results: `status.[@this].#(phase=="Succeeded")#`).
/// A path through something missing finds nothing. Anything else (wildcard keys, modifiers other than `@this`, `{...}` multipaths, literals, `..` JSON
/// lines, the `~` conversions) is a parse error.
public struct GJSONPath: Sendable, CustomStringConvertible {
    /// The path as written.
    public let text: String
    /// Components separated by `|`: each applies to the whole result of the one before.
    let segments: [[Step]]

    public var description: String { text }

    /// Parses `text`; a `GJSONError` names the position (1-based, in characters) and what is wrong there.
    public static func parse(_ text: String) throws(GJSONError) -> GJSONPath {
        var parser = GJSONParser(text)
        return try parser.parseAll()
    }

    init(text: String, segments: [[Step]]) {
        self.text = text
        self.segments = segments
    }

    /// The path's result in `json`, or `nil` when it does not exist. An array's length (`#`) is an `Int`;
    /// the results of `#(...)#`, of `#` before `.rest`, and of a multipath are arrays (`[Any]`).
    public func evaluate(_ json: Any) -> Any? {
        var value: Any = json
        for segment in segments {
            guard let next = Self.apply(segment[...], to: value) else { return nil }
            value = next
        }
        return value
    }

    /// Whether the path holds in `json` as Katib understands a trial's success or failure condition:
    /// its result is an object, or an array with at least one item. (A string, a number, `true` or
    /// `null` does not count: Katib reads the met condition's `reason` and `message` from it.)
    public func holds(in json: Any) -> Bool {
        Self.isMet(evaluate(json))
    }

    /// Katib's reading of a condition's result: an object, or a non-empty array.
    public static func isMet(_ result: Any?) -> Bool {
        switch result.map(JSONKind.of) {
        case .object?: true
        case .array(let items)?: !items.isEmpty
        default: false
        }
    }

    indirect enum Step: Sendable {
        /// An object's member, or an array's item when the key is a number.
        case key(String)
        /// `#`: an array's length, or (with steps after it) the steps over each item.
        case each
        case query(GJSONQuery, all: Bool)
        case this
        case multipath([GJSONPath])
    }

    private static func apply(_ steps: ArraySlice<Step>, to value: Any) -> Any? {
        guard let step = steps.first else { return value }
        let rest = steps.dropFirst()
        switch step {
        case .key(let key):
            switch JSONKind.of(value) {
            case .object(let object):
                return object[key].flatMap { apply(rest, to: $0) }
            case .array(let items):
                guard let index = arrayIndex(key), index < items.count else { return nil }
                return apply(rest, to: items[index])
            default:
                return nil
            }
        case .each:
            switch JSONKind.of(value) {
            case .array(let items):
                if rest.isEmpty { return items.count }
                return items.compactMap { apply(rest, to: $0) } as [Any]
            case .object(let object):
                return object["#"].flatMap { apply(rest, to: $0) }
            default:
                return nil
            }
        case .query(let query, let all):
            guard case .array(let items) = JSONKind.of(value) else { return nil }
            if all {
                return items.filter(query.matches).compactMap { apply(rest, to: $0) } as [Any]
            }
            return items.first(where: query.matches).flatMap { apply(rest, to: $0) }
        case .this:
            return apply(rest, to: value)
        case .multipath(let paths):
            return apply(rest, to: paths.compactMap { $0.evaluate(value) } as [Any])
        }
    }

    /// A key made of decimal digits only, as an array index.
    private static func arrayIndex(_ key: String) -> Int? {
        guard !key.isEmpty, key.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return Int(key)
    }
}

/// A query's test of one array item: `#(path op value)`.
struct GJSONQuery: Sendable {
    enum Operator: String, Sendable {
        case equal = "=="
        case notEqual = "!="
        case less = "<"
        case lessOrEqual = "<="
        case greater = ">"
        case greaterOrEqual = ">="
        case like = "%"
        case notLike = "!%"
    }

    /// What is tested, from the item (`nil`: the item itself).
    var path: GJSONPath?
    /// `nil`: the path exists.
    var op: Operator?
    /// The value as text (a quoted string unquoted); compared as the item's value's type says.
    var value: String

    /// GJSON's comparison: by the tested value's type (a string as bytes, a number as a number, a
    /// bool by its few orders); `null`, objects and arrays match no operator.
    func matches(_ item: Any) -> Bool {
        let tested: Any?
        if let path {
            switch JSONKind.of(item) {
            case .object, .array: tested = path.evaluate(item)
            default: tested = nil
            }
        } else {
            tested = item
        }
        guard let tested else { return false }
        guard let op else { return true }
        switch JSONKind.of(tested) {
        case .string(let string):
            let left = Array(string.utf8), right = Array(value.utf8)
            switch op {
            case .equal: return left == right
            case .notEqual: return left != right
            case .less: return left.lexicographicallyPrecedes(right)
            case .lessOrEqual: return !right.lexicographicallyPrecedes(left)
            case .greater: return right.lexicographicallyPrecedes(left)
            case .greaterOrEqual: return !left.lexicographicallyPrecedes(right)
            case .like: return likeMatch(Array(string.unicodeScalars)[...], Array(value.unicodeScalars)[...])
            case .notLike: return !likeMatch(Array(string.unicodeScalars)[...], Array(value.unicodeScalars)[...])
            }
        case .number(let number):
            let other = Double(value) ?? 0
            switch op {
            case .equal: return number == other
            case .notEqual: return number != other
            case .less: return number < other
            case .lessOrEqual: return number <= other
            case .greater: return number > other
            case .greaterOrEqual: return number >= other
            case .like, .notLike: return false
            }
        case .bool(true):
            switch op {
            case .equal: return value == "true"
            case .notEqual: return value != "true"
            case .greater: return value == "false"
            case .greaterOrEqual: return true
            default: return false
            }
        case .bool(false):
            switch op {
            case .equal: return value == "false"
            case .notEqual: return value != "false"
            case .less: return value == "true"
            case .lessOrEqual: return true
            default: return false
            }
        case .null, .object, .array, .other:
            return false
        }
    }

    /// `*` matches any characters (none too), `?` any one.
    private func likeMatch(_ text: ArraySlice<Unicode.Scalar>, _ pattern: ArraySlice<Unicode.Scalar>) -> Bool {
        var text = text, pattern = pattern
        // The last `*` seen and where the text stood then: on a mismatch, that star takes one more character.
        var star: (pattern: ArraySlice<Unicode.Scalar>, text: ArraySlice<Unicode.Scalar>)?
        while true {
            if let p = pattern.first, p == "*" {
                pattern = pattern.dropFirst()
                star = (pattern, text)
                continue
            }
            if let c = text.first, let p = pattern.first, p == "?" || p == c {
                text = text.dropFirst()
                pattern = pattern.dropFirst()
                continue
            }
            if text.isEmpty && pattern.isEmpty { return true }
            guard let last = star, !last.text.isEmpty else { return false }
            star = (last.pattern, last.text.dropFirst())
            pattern = last.pattern
            text = last.text.dropFirst()
        }
    }
}

/// A JSON value as Foundation gives it, by kind (booleans told apart from numbers).
enum JSONKind {
    case object([String: Any])
    case array([Any])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null
    case other

    static func of(_ value: Any) -> JSONKind {
        if value is NSNull { return .null }
        if let string = value as? String { return .string(string) }
        if type(of: value) == Bool.self, let bool = value as? Bool { return .bool(bool) }
        if let object = value as? [String: Any] { return .object(object) }
        if let array = value as? [Any] { return .array(array) }
        if let number = value as? NSNumber {
            // JSONSerialization's true and false are NSNumbers of type char ("c") where they are not Bools.
            if String(cString: number.objCType) == "c" { return .bool(number.boolValue) }
            return .number(number.doubleValue)
        }
        switch value {
        case let int as Int: return .number(Double(int))
        case let double as Double: return .number(double)
        default: return .other
        }
    }
}

/// A GJSON path that cannot be used: where (1-based, in characters) and why.
public struct GJSONError: Error, Equatable, CustomStringConvertible, Sendable {
    public var position: Int
    public var reason: String

    public var description: String { "at character \(position): \(reason)" }
}

/// Reads a GJSON path, one character at a time.
struct GJSONParser {
    private let text: String
    private let chars: [Character]
    private var index = 0
    /// How many queries and multipaths this one is inside: a path nested deeper than `maxDepth` is refused, so
    /// that no condition, however written, can exhaust the stack (Katib's nest one or two).
    private var depth: Int
    static let maxDepth = 16

    init(_ text: String, depth: Int = 0) {
        self.text = text
        chars = Array(text)
        self.depth = depth
    }

    private var current: Character? { index < chars.count ? chars[index] : nil }

    private func fail(_ reason: String, at position: Int? = nil) -> GJSONError {
        GJSONError(position: (position ?? index) + 1, reason: reason)
    }

    mutating func parseAll() throws(GJSONError) -> GJSONPath {
        if chars.isEmpty { throw fail("the path is empty") }
        if chars.starts(with: [".", "."]) { throw fail("'..' (JSON lines) is not supported") }
        let path = try parsePath(inMultipath: false)
        if let current { throw fail("unexpected '\(current)'") }
        return path
    }

    /// Segments separated by `|`, up to the end (or, in a multipath, up to its `,` or `]`).
    private mutating func parsePath(inMultipath: Bool) throws(GJSONError) -> GJSONPath {
        let start = index
        var segments: [[GJSONPath.Step]] = []
        var steps: [GJSONPath.Step] = []
        while true {
            steps.append(try parseComponent(inMultipath: inMultipath))
            switch current {
            case ".":
                index += 1
                if current == nil { throw fail("the path ends with '.'") }
            case "|":
                index += 1
                if current == nil { throw fail("the path ends with '|'") }
                segments.append(steps)
                steps = []
            case nil:
                segments.append(steps)
                return GJSONPath(text: String(chars[start..<index]), segments: segments)
            case let c? where inMultipath && (c == "," || c == "]"):
                segments.append(steps)
                return GJSONPath(text: String(chars[start..<index]), segments: segments)
            case let c?:
                throw fail("expected '.' or '|' before '\(c)'")
            }
        }
    }

    private mutating func parseComponent(inMultipath: Bool) throws(GJSONError) -> GJSONPath.Step {
        switch current {
        case "#":
            let next = index + 1 < chars.count ? chars[index + 1] : nil
            switch next {
            case "(":
                return try parseQuery()
            case "[":
                throw fail("'#[...]' queries are written '#(...)'")
            default:
                index += 1
                return .each
            }
        case "@":
            let start = index
            index += 1
            var name = ""
            while let c = current, c.isLetter || c.isNumber {
                name.append(c)
                index += 1
            }
            if name == "this" { return .this }
            throw fail("the modifier '@\(name)' is not supported (only @this is)", at: start)
        case "[":
            return try parseMultipath()
        case "{":
            throw fail("'{...}' multipaths are not supported (only '[...]')")
        case "!":
            throw fail("'!' literals are not supported")
        default:
            return .key(try parseKey(inMultipath: inMultipath))
        }
    }

    /// A key, up to `.` or `|` (or a multipath's `,` or `]`), with `\` escaping the next character.
    private mutating func parseKey(inMultipath: Bool) throws(GJSONError) -> String {
        var key = ""
        let start = index
        while let c = current {
            if c == "." || c == "|" || (inMultipath && (c == "," || c == "]")) { break }
            if c == "\\" {
                index += 1
                guard let escaped = current else { throw fail("the path ends with '\\'") }
                key.append(escaped)
                index += 1
                continue
            }
            if c == "*" || c == "?" { throw fail("wildcard keys ('\(c)') are not supported; escape it as '\\\(c)'") }
            key.append(c)
            index += 1
        }
        if index == start { throw fail("empty key") }
        return key
    }

    /// `[path,path,...]`: an array of the paths' results.
    private mutating func parseMultipath() throws(GJSONError) -> GJSONPath.Step {
        let open = index
        if depth >= Self.maxDepth { throw fail("queries and multipaths are nested more than \(Self.maxDepth) deep") }
        depth += 1
        defer { depth -= 1 }
        index += 1
        var paths: [GJSONPath] = []
        while true {
            guard current != nil else { throw fail("'[' is never closed", at: open) }
            paths.append(try parsePath(inMultipath: true))
            switch current {
            case ",": index += 1
            case "]":
                index += 1
                return .multipath(paths)
            default: throw fail("'[' is never closed", at: open)
            }
        }
    }

    /// `#(path op value)` or `#(path op value)#`; the operator is the first of `!=<>%` outside brackets.
    private mutating func parseQuery() throws(GJSONError) -> GJSONPath.Step {
        let open = index
        index += 2
        let bodyStart = index
        var depth = 1
        var opStart: Int?
        scan: while true {
            guard let c = current else { throw fail("'#(' is never closed", at: open) }
            if depth == 1, opStart == nil, "!=<>%".contains(c) {
                opStart = index
                index += 1
                continue
            }
            switch c {
            case "\\": index += 1
            case "(", "[": depth += 1
            case ")", "]":
                depth -= 1
                if depth == 0 { break scan }
            case "\"":
                let quote = index
                index += 1
                while let q = current, q != "\"" {
                    if q == "\\" { index += 1 }
                    index += 1
                }
                if current == nil { throw fail("a string is never closed", at: quote) }
            default: break
            }
            index += 1
        }
        let close = index
        index += 1
        let all = current == "#"
        if all { index += 1 }

        let pathEnd = opStart ?? close
        let (pathFrom, pathTo) = trimmed(bodyStart, pathEnd)
        var path: GJSONPath?
        if pathFrom < pathTo {
            if self.depth >= Self.maxDepth { throw fail("queries and multipaths are nested more than \(Self.maxDepth) deep", at: pathFrom) }
            var inner = GJSONParser(String(chars[pathFrom..<pathTo]), depth: self.depth + 1)
            do {
                path = try inner.parseAll()
            } catch {
                throw GJSONError(position: error.position + pathFrom, reason: error.reason)
            }
        }
        guard let opStart else {
            guard let path else { throw fail("the query is empty", at: open) }
            return .query(GJSONQuery(path: path, op: nil, value: ""), all: all)
        }
        var opEnd = opStart + 1
        if opEnd < close, chars[opEnd] == "=" || (chars[opStart] == "!" && chars[opEnd] == "%") { opEnd += 1 }
        let opText = String(chars[opStart..<opEnd])
        let op: GJSONQuery.Operator
        switch opText {
        case "=", "==": op = .equal
        case let text:
            guard let known = GJSONQuery.Operator(rawValue: text) else {
                throw fail("unknown operator '\(text)' (use ==, !=, <, <=, >, >=, % or !%)", at: opStart)
            }
            op = known
        }
        let (valueFrom, valueTo) = trimmed(opEnd, close)
        var value = String(chars[valueFrom..<valueTo])
        if value.hasPrefix("~") { throw fail("'~' conversions are not supported", at: valueFrom) }
        if value.hasPrefix("\"") {
            guard value.count >= 2, value.hasSuffix("\""),
                  let string = try? JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed) as? String else {
                throw fail("the value \(value) is not a well-formed quoted string", at: valueFrom)
            }
            value = string
        }
        return .query(GJSONQuery(path: path, op: op, value: value), all: all)
    }

    /// The range without the spaces at its ends.
    private func trimmed(_ from: Int, _ to: Int) -> (Int, Int) {
        var from = from, to = to
        while from < to, chars[from].isWhitespace { from += 1 }
        while to > from, chars[to - 1].isWhitespace { to -= 1 }
        return (from, to)
    }
}
