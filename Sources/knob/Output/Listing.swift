import ArgumentParser
import Foundation
import Knob

/// One cell of a listing (`knob list`, `knob trials`): what it shows in a table, exactly (wide,
/// CSV), and how rows sort by it.
enum Cell {
    /// Text shown as is; sorts as text.
    case text(String)
    /// Text that may be absent: `-` in tables, empty in CSV.
    case optionalText(String?)
    /// A parameter's value as written: tables shorten long numbers; sorts as a number when it is one.
    case value(String)
    /// A number: 6 significant digits in a table, every digit in wide and CSV; absent is `-` (empty in CSV).
    case number(Double?)
    case count(Int)
    /// A time: an age in tables, RFC 3339 in CSV; sorts by time.
    case time(Date?)
    /// Seconds between two times: `1m 5s` in tables, seconds in CSV.
    case duration(TimeInterval?)
    /// A trial's name: sorts by its creation order, so that `mnist-10` follows `mnist-9`.
    case ordinal(String, Int)

    func text(_ mode: ListingMode) -> String {
        switch self {
        case .text(let text): return text
        case .optionalText(let text): return text ?? (mode == .csv ? "" : "-")
        case .value(let text): return mode == .table ? displayValue(text) : text
        case .number(let value):
            guard let value else { return mode == .csv ? "" : "-" }
            return mode == .table ? formatValue(value) : exactNumber(value)
        case .count(let value): return String(value)
        case .time(let date):
            guard let date else { return mode == .csv ? "" : "-" }
            return mode == .csv ? rfc3339(date) : age(date)
        case .duration(let seconds):
            guard let seconds else { return mode == .csv ? "" : "-" }
            return mode == .csv ? String(Int(seconds.rounded())) : durationText(seconds)
        case .ordinal(let name, _): return name
        }
    }

    /// Orders two cells: numbers before text, absent values last.
    static func ascending(_ a: Cell, _ b: Cell) -> Bool {
        switch (a.sortKey, b.sortKey) {
        case (.number(let x), .number(let y)): return x < y
        case (.number, _): return true
        case (_, .number): return false
        case (.text(let x), .text(let y)): return x.localizedStandardCompare(y) == .orderedAscending
        case (.text, .none): return true
        default: return false
        }
    }

    private enum SortKey {
        case number(Double)
        case text(String)
        case none
    }

    private var sortKey: SortKey {
        switch self {
        case .text(let text): return .text(text)
        case .optionalText(let text): return text.map { .text($0) } ?? .none
        case .value(let text): return Double(text).map { .number($0) } ?? .text(text)
        case .number(let value): return value.map { .number($0) } ?? .none
        case .count(let value): return .number(Double(value))
        case .time(let date): return date.map { .number($0.timeIntervalSince1970) } ?? .none
        case .duration(let seconds): return seconds.map { .number($0) } ?? .none
        case .ordinal(_, let order): return .number(Double(order))
        }
    }
}

/// How a listing is printed.
enum ListingMode {
    case table, wide, csv
}

/// A column of a listing: its names (the first is its header; any of them is a `--sort-by` field),
/// where it shows, and its cell for a row.
struct ListingColumn<Row> {
    var names: [String]
    var modes: Set<ListingMode>
    var cell: (Row) -> Cell

    init(_ names: String..., in modes: Set<ListingMode> = [.table, .wide, .csv], cell: @escaping (Row) -> Cell) {
        self.names = names
        self.modes = modes
        self.cell = cell
    }
}

/// Rows and their columns, printed as a table, a wide table or CSV, and sorted by a column.
struct Listing<Row> {
    var columns: [ListingColumn<Row>]

    /// `rows` ordered by the column `field` names (ignoring case, `-` and `_`); a stable sort.
    func sorted(_ rows: [Row], by field: String?) throws -> [Row] {
        guard let field else { return rows }
        let wanted = Self.normalized(field)
        guard let column = columns.first(where: { $0.names.contains { Self.normalized($0) == wanted } }) else {
            var fields: [String] = []
            for column in columns where !fields.contains(column.names[0]) { fields.append(column.names[0]) }
            let hint = closest(field, in: fields).map { "did you mean \($0)? " } ?? ""
            throw UsageError("--sort-by \(field): no such field; \(hint)fields: \(fields.joined(separator: ", "))")
        }
        return rows.enumerated().sorted { a, b in
            let x = column.cell(a.element), y = column.cell(b.element)
            if Cell.ascending(x, y) { return true }
            if Cell.ascending(y, x) { return false }
            return a.offset < b.offset
        }.map(\.element)
    }

    static func normalized(_ name: String) -> String {
        name.lowercased().filter { $0 != "-" && $0 != "_" && $0 != " " }
    }

    func render(_ rows: [Row], mode: ListingMode) -> String {
        let shown = columns.filter { $0.modes.contains(mode) }
        let cells = rows.map { row in shown.map { $0.cell(row).text(mode) } }
        switch mode {
        case .csv:
            return ([shown.map { $0.names[0] }] + cells).map { $0.map(csvField).joined(separator: ",") }.joined(separator: "\n")
        case .table, .wide:
            return table(shown.map { $0.names[0].uppercased() }, cells.map { $0.map(oneLine) })
        }
    }
}

/// A cell of a table on one line.
private func oneLine(_ text: String) -> String {
    text.contains("\n") ? text.replacingOccurrences(of: "\n", with: " ") : text
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote, a line break or edge spaces.
func csvField(_ text: String) -> String {
    let needsQuotes = text.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" } || text.first == " " || text.last == " "
    return needsQuotes ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
}

/// A number with every digit, as `-o json` writes it: the shortest text that reads back as the
/// same `Double` (`0.0005543999816845725`), whole numbers without `.0`.
func exactNumber(_ value: Double) -> String {
    if value.isFinite, value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return value.description
}

/// A time as `-o json` writes it: RFC 3339 in UTC, to the second.
func rfc3339(_ date: Date) -> String {
    date.formatted(.iso8601)
}

/// `45s`, `3m 12s`, `2h 5m`.
func durationText(_ seconds: TimeInterval) -> String {
    let total = Int(seconds.rounded())
    if total < 60 { return "\(total)s" }
    if total < 3600 { return "\(total / 60)m \(total % 60)s" }
    return "\(total / 3600)h \(total % 3600 / 60)m"
}
