import ArgumentParser
import Foundation
import Knob
import Synchronization

/// `knob collect`: what a metrics collector reads, printed as reports, so that a sidecar container (or a
/// person) can run knob's own reading of TensorBoard event files and metrics files.
struct Collect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read metrics as knob's collectors do and print them: TensorBoard event files, or a metrics file.",
        discussion: """
            knob collect tfevents DIR prints the scalars of the event files under DIR; knob collect file PATH --metric M \
            prints the reports of a metrics file (TEXT, with Katib's filters, or JSON lines). With --follow they keep \
            reading as the files grow, as a collector sidecar does, until stopped. -o json prints {"NAME": VALUE, "step": N} \
            per report, the JSON lines a trial's log is read as.
            """,
        subcommands: [TFEvents.self, MetricsFile.self])
}

enum CollectOutput: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

struct CollectOptions: ParsableArguments {
    @Flag(help: "Keep reading as the files grow (and wait for them to appear), until stopped.") var follow = false
    @Option(help: ArgumentHelp("Seconds between reads with --follow.", valueName: "seconds")) var interval: Double = 0.2
    @Option(name: [.short, .customLong("output")], help: "text: name=value lines; json: a JSON object per report, with its step.")
    var output: CollectOutput = .text

    func validate() throws {
        guard interval >= 0.01, interval <= 60 else { throw ValidationError("--interval takes 0.01 to 60 seconds, found \(interval)") }
    }

    /// One report as a line; nothing for a report that is not a number. `keys` keeps each name as a JSON
    /// string, encoded once.
    func line(name: String, value: Double?, step: Int?, keys: inout [String: String]) -> String? {
        guard let value, value.isFinite else { return nil }
        // A float32 (TensorBoard's simple values) prints as the float it was: 0.58, not 0.5799999833106995.
        let number = Double(Float(value)) == value ? "\(Float(value))" : "\(value)"
        switch output {
        case .text:
            return "\(name)=\(number)"
        case .json:
            let key = keys[name] ?? String(decoding: (try? JSONEncoder().encode(name)) ?? Data("\"\"".utf8), as: UTF8.self)
            keys[name] = key
            return "{\(key): \(number)\(step.map { ", \"step\": \($0)" } ?? "")}"
        }
    }

    func emit(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    /// Waits `interval` before the next read, or less when a stop comes.
    func pause(_ stop: StopRequests?) async throws {
        let end = ContinuousClock.now + .milliseconds(Int64(interval * 1000))
        while ContinuousClock.now < end, !(stop?.isRequested ?? false) {
            try await Task.sleep(for: min(.milliseconds(50), end - ContinuousClock.now))
        }
    }

    /// With --follow, SIGTERM and SIGINT end the reading after one more read, so what was written before the
    /// stop is printed: a sidecar is stopped when the trial's container has ended, its last reports just written.
    func stopRequests() -> StopRequests? {
        follow ? StopRequests() : nil
    }
}

/// Whether SIGTERM or SIGINT came. The handler is in place when `init` returns, so a stop sent at any later
/// moment is seen: a dispatch source would be registered later, on another thread, and a signal sent
/// between the two would be lost.
final class StopRequests: Sendable {
    init() {
        _ = stopSignalled.load(ordering: .relaxed)  // the global is made here, not in the handler
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in stopSignalled.store(true, ordering: .relaxed) }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        for number in [SIGTERM, SIGINT] { sigaction(number, &action, nil) }
    }

    var isRequested: Bool { stopSignalled.load(ordering: .relaxed) }
}

/// Set by the signal handler, which can touch nothing but a global.
private let stopSignalled = Atomic<Bool>(false)

struct TFEvents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tfevents",
        abstract: "Print the scalars of the TensorBoard event files under a folder (TF1 simple values and TF2 scalar tensors).",
        discussion: """
            Each scalar is named by its tag, or subfolder/tag for a file in a subfolder. A record that fails its CRC is \
            skipped and said on stderr; the others are read.
            """)

    @Argument(help: "The folder of the event files (files whose name holds tfevents, in it and its subfolders).") var directory: String
    @Option(name: .customLong("metric"), help: ArgumentHelp("Only this tag (or subfolder/tag); repeat for more. Default: every scalar.",
                                                             valueName: "name"))
    var metrics: [String] = []
    @OptionGroup var options: CollectOptions

    func run() async throws {
        try await reportingErrors {
            var isFolder: ObjCBool = false
            if !options.follow, !FileManager.default.fileExists(atPath: directory, isDirectory: &isFolder) || !isFolder.boolValue {
                throw UsageError("\(directory): no such folder (with --follow, knob collect waits for it)")
            }
            let events = TensorBoardDirectory(path: directory)
            let wanted = Set(metrics)
            var keys: [String: String] = [:]
            let stop = options.stopRequests()
            var sawScalars = false
            while true {
                // Asked before the read: the read then holds everything written before the stop.
                let stopping = stop?.isRequested ?? false
                var lines: [String] = []
                for (name, alias, scalar) in events.read() {
                    sawScalars = true
                    let shown = wanted.isEmpty ? alias : wanted.contains(alias) ? alias : wanted.contains(name) ? name : nil
                    if let shown, let line = options.line(name: shown, value: scalar.value, step: scalar.step, keys: &keys) { lines.append(line) }
                }
                options.emit(lines)
                for problem in events.takeProblems() { printError("knob collect: \(directory)/\(problem)") }
                guard options.follow, !stopping else {
                    if !sawScalars { printError("knob collect: no scalars were written to event files under \(directory)") }
                    return
                }
                try await options.pause(stop)
            }
        }
    }
}

struct MetricsFile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "file",
        abstract: "Print the reports of a metrics file, read as the File collector reads it.",
        discussion: """
            Only the metrics named with --metric are read, as a spec's objective and additional metrics. A file that is \
            replaced or truncated is read again from its start.
            """)

    @Argument(help: "The metrics file.") var path: String
    @Option(name: .customLong("metric"), help: ArgumentHelp("A metric to read; repeat for more.", valueName: "name")) var metrics: [String] = []
    @Option(help: "The file's format: TEXT (name=value, or --filter) or JSON (a JSON object per line).") var format: String = "TEXT"
    @Option(name: .customLong("filter"), help: ArgumentHelp("A Katib metricsFormat regex, with a name group and a value group; repeat for more.",
                                                             valueName: "regex"))
    var filters: [String] = []
    @OptionGroup var options: CollectOptions

    func validate() throws {
        if metrics.isEmpty { throw ValidationError("name the metrics to read with --metric (e.g. --metric accuracy --metric loss)") }
        if MetricsCollectorSpec.Format(rawValue: format.uppercased()) == nil { throw ValidationError("--format takes TEXT or JSON, found \(format)") }
        if !filters.isEmpty, format.uppercased() == "JSON" { throw ValidationError("--filter reads TEXT files; a JSON file needs none") }
    }

    func run() async throws {
        try await reportingErrors {
            let collector = MetricsCollectorSpec(kind: .file, path: path, format: MetricsCollectorSpec.Format(rawValue: format.uppercased()) ?? .text,
                                                 metricsFormat: filters)
            let scraper: MetricsScraper
            do {
                scraper = try MetricsScraper(metricNames: metrics, collector: collector)
            } catch {
                throw UsageError("--filter: \(error)")
            }
            if !options.follow, !FileManager.default.isReadableFile(atPath: path) {
                throw UsageError("\(path): \(FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file") (with --follow, knob collect waits for it)")
            }
            let reader = MetricsFileReader(path: path, scraper: scraper)
            var keys: [String: String] = [:]
            let stop = options.stopRequests()
            var stopping = false
            while true {
                if !stopping { stopping = stop?.isRequested ?? false }
                let (reports, bytes, _) = reader.read()
                var all = reports
                let last = bytes == 0 && (!options.follow || stopping)
                // The last line may lack its newline: read it too when nothing more will come.
                if last { all += reader.finish() }
                options.emit(all.compactMap { options.line(name: $0.name, value: $0.value, step: $0.step, keys: &keys) })
                if bytes > 0 { continue }
                if last {
                    if !FileManager.default.fileExists(atPath: path) { printError("knob collect: \(path) was never created") }
                    return
                }
                try await options.pause(stop)
            }
        }
    }
}
