import Foundation
import Hummingbird
import Knob

/// The body of a budget edit (`PATCH /v1/experiments/{name}`), checked field by field: only JSON
/// integers are numbers (not `true`, `"16"` or `1.5`), and each stays within knobd's limits.
struct BudgetEdit: Equatable {
    var maxTrialCount: Int?
    var parallelTrialCount: Int?
    var maxFailedTrialCount: Int?

    static let fields = ["maxTrialCount", "parallelTrialCount", "maxFailedTrialCount"]
}

extension BudgetEdit {
    /// Reads and checks a body; a malformed one is a 400, a value out of range a 422.
    init(json: Data, limits: SpecLimits) throws(APIError) {
        guard let object = try? JSONDecoder().decode([String: JSONValue].self, from: json) else {
            throw APIError(.badRequest, code: "BadRequest",
                           #"the body must be a JSON object with maxTrialCount, parallelTrialCount or maxFailedTrialCount, e.g. {"parallelTrialCount": 4}"#)
        }
        for key in object.keys.sorted() where !Self.fields.contains(key) {
            throw APIError(.badRequest, code: "BadRequest",
                           "unknown field \"\(key.prefix(60))\": only maxTrialCount, parallelTrialCount and maxFailedTrialCount can change")
        }
        maxTrialCount = try Self.count(object, "maxTrialCount", from: 1, to: limits.maxTrialCount,
                                       limit: "the most trials an experiment may have")
        parallelTrialCount = try Self.count(object, "parallelTrialCount", from: 1, to: limits.maxParallelTrialCount,
                                            limit: "knobd's limit on trials at once; start knobd with --max-parallel N to allow more")
        maxFailedTrialCount = try Self.count(object, "maxFailedTrialCount", from: 0, to: limits.maxTrialCount,
                                             limit: "the most trials an experiment may have")
    }

    private static func count(_ object: [String: JSONValue], _ key: String, from minimum: Int, to maximum: Int, limit: String) throws(APIError) -> Int? {
        guard let value = object[key] else { return nil }
        let number: Double
        switch value {
        case .integer(let integer): number = Double(integer)
        case .number(let fraction) where fraction.rounded() == fraction: number = fraction
        default: throw APIError(.badRequest, code: "BadRequest", "\(key) must be a whole number (a JSON integer such as 4), not \(value)")
        }
        if number < Double(minimum) {
            throw APIError(.unprocessableContent, code: "InvalidSpec", "\(key) must be at least \(minimum), found \(value)")
        }
        guard case .integer(let integer) = value, integer <= maximum else {
            throw APIError(.unprocessableContent, code: "InvalidSpec", "\(key) must be at most \(maximum) (\(limit)), found \(value)")
        }
        return integer
    }
}

/// One JSON value, told apart as JSON tells it: `true` is not 1, and `"16"` is not 16.
enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case integer(Int)
    /// A number that is not an integer an `Int` holds (a fraction, or too large).
    case number(Double)
    case bool(Bool)
    case string(String)
    case null
    case array
    case object

    init(from decoder: any Decoder) throws {
        if (try? decoder.container(keyedBy: AnyKey.self)) != nil { self = .object; return }
        if (try? decoder.unkeyedContainer()) != nil { self = .array; return }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let value = try? single.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? single.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? single.decode(Double.self) {
            self = .number(value)
        } else if let value = try? single.decode(String.self) {
            self = .string(value)
        } else {
            // A number no Double holds, e.g. 1e400.
            self = .number(.infinity)
        }
    }

    /// The value as a user would name it in a message.
    var description: String {
        switch self {
        case .integer(let value): return String(value)
        case .number(let value): return value.isFinite ? String(describing: value) : "a number too large to hold"
        case .bool(let value): return "the boolean \(value)"
        case .string(let value): return "the string \"\(value.prefix(40))\""
        case .null: return "null"
        case .array: return "a list"
        case .object: return "an object"
        }
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
