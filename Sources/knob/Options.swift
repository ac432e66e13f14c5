import ArgumentParser
import Foundation
import Knob
import Store

/// Where the store is.
struct HomeOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("knob's folder (database, logs, trial folders).", valueName: "dir"), completion: .directory)
    var home: String?

    var knobHome: KnobHome { KnobHome(home) }
}

/// How data is printed.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, yaml
}

struct OutputOptions: ParsableArguments {
    @Option(name: [.short, .customLong("output")], help: "Output format: table, json or yaml (the same data as json).")
    var output: OutputFormat = .table

    /// Prints `value` as JSON or YAML when asked; `false` when the caller prints a table.
    func printData(_ value: some Encodable) throws -> Bool {
        try printStructured(value, as: output == .json ? .json : output == .yaml ? .yaml : nil)
    }
}

/// How a listing (`knob list`, `knob trials`) is printed, and in which order.
enum ListFormat: String, ExpressibleByArgument, CaseIterable {
    case table, wide, json, yaml, csv

    /// The table or CSV layout, or nil for JSON and YAML.
    var listingMode: ListingMode? {
        switch self {
        case .table: return .table
        case .wide: return .wide
        case .csv: return .csv
        case .json, .yaml: return nil
        }
    }
}

struct ListOutputOptions: ParsableArguments {
    @Option(name: [.short, .customLong("output")],
            help: "Output format: table, wide (more columns, every digit), json, yaml (the same data as json) or csv.")
    var output: ListFormat = .table

    @Option(help: ArgumentHelp("Order the rows by this column, ascending (e.g. status, or a metric or parameter name).",
                               valueName: "field"))
    var sortBy: String?

    /// Prints `value` as JSON or YAML when asked; `false` when the caller prints a table or CSV.
    func printData(_ value: some Encodable) throws -> Bool {
        try printStructured(value, as: output == .json ? .json : output == .yaml ? .yaml : nil)
    }
}

/// JSON or YAML.
enum StructuredFormat {
    case json, yaml
}

/// Prints `value` in `format`; `false` (nothing printed) when there is no format.
func printStructured(_ value: some Encodable, as format: StructuredFormat?) throws -> Bool {
    switch format {
    case nil: return false
    case .json: print(try jsonText(value))
    case .yaml: print(try yamlText(value), terminator: "")
    }
    return true
}

/// Prints to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// JSON text of `value`, pretty and with sorted keys.
func jsonText(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// YAML text of `value`: the JSON of `value` (the same keys, digits and timestamps) in YAML's
/// block style, ending with a newline.
func yamlText(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return try JSONTree(json: encoder.encode(value)).yaml
}

/// Left-aligned columns separated by two spaces, with no spaces at the ends of lines.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
    return all.map { row in
        let line = row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
        return String(line.dropLast(line.reversed().prefix { $0 == " " }.count))
    }.joined(separator: "\n")
}

/// "3m 12s ago"-style age.
func age(_ date: Date?) -> String {
    guard let date else { return "-" }
    let seconds = Int(Date().timeIntervalSince(date))
    if seconds < 60 { return "\(seconds)s" }
    if seconds < 3600 { return "\(seconds / 60)m" }
    if seconds < 86_400 { return "\(seconds / 3600)h" }
    return "\(seconds / 86_400)d"
}

/// `lr=0.0477057 momentum=0.9`: long numbers shortened to 6 significant digits for reading
/// (`knob best` and `-o json` keep every digit).
func assignmentText(_ assignments: [ParameterAssignment]) -> String {
    assignments.map { "\($0.name)=\(displayValue($0.value))" }.joined(separator: " ")
}

func displayValue(_ value: String) -> String {
    guard value.count > 8, let number = Double(value) else { return value }
    return formatValue(number)
}
