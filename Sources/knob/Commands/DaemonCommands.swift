import ArgumentParser
import Foundation
import Knob
import KnobClient
import Store

/// A client for commands that need knobd, with a message that says how to start it.
func daemonClient(_ connection: ConnectionOptions, home: KnobHome) async throws -> KnobClient {
    let client = try connection.client(home: home)
    do {
        try await client.request("GET", "/healthz", timeout: 5)
    } catch KnobClient.ClientError.unreachable {
        throw KnobClient.ClientError.unreachable(
            endpoint: client.endpoint.description,
            reason: "this command needs knobd: start it with `knobd --home \(home.path)` (or `knob daemon`)")
    }
    return client
}

struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit an experiment to knobd, which runs it in the background.",
        discussion: "Relative paths in the spec's trial template resolve against the spec file's folder.")

    @Option(name: .shortAndLong, help: ArgumentHelp("The Experiment spec (YAML or JSON).", valueName: "spec"), completion: .file())
    var file: String

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var outputOptions: OutputOptions

    func run() async throws {
        try await reportingErrors {
            let (text, spec) = try Engine.loadSpec(at: file)
            let client = try await daemonClient(connection, home: homeOptions.knobHome)
            let directory = (KnobHome.absolute(file) as NSString).deletingLastPathComponent
            let query = directory.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? directory
            let response = try await client.request("POST", "/v1/experiments?directory=\(query)", body: Data(text.utf8),
                                                    contentType: "application/yaml")
            let view = try APIJSON.decoder.decode(ExperimentView.self, from: response.body)
            if try outputOptions.printData(try KatibExperiment(view: view, specText: text)) { return }
            print("experiment \(spec.name) created and running; follow it with `knob watch \(spec.name)`, wait for it with `knob wait \(spec.name)`")
        }
    }
}

struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop a running experiment: its trials are killed and it ends Stopped.")

    @Argument(help: "The experiment's name.", completion: .experimentName) var name: String
    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            let client = try await daemonClient(connection, home: homeOptions.knobHome)
            let view = try await DataSource.daemon(client).naming(name) {
                try APIJSON.decoder.decode(ExperimentView.self, from: try await client.request("POST", "/v1/experiments/\(name)/stop").body)
            }
            print("experiment \(name): \(view.status) (\(view.reason))")
        }
    }
}

struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a stopped experiment again (or a finished one whose maxTrialCount was raised with knob edit).")

    @Argument(help: "The experiment's name.", completion: .experimentName) var name: String
    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            let client = try await daemonClient(connection, home: homeOptions.knobHome)
            try await DataSource.daemon(client).naming(name) { try await client.request("POST", "/v1/experiments/\(name)/resume") }
            print("experiment \(name) is running again")
        }
    }
}

struct Edit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Change a running experiment's budget; it applies at once.")

    @Argument(help: "The experiment's name.", completion: .experimentName) var name: String
    // Unconditional, so that a negative number reaches validate() rather than reading as an option.
    @Option(parsing: .unconditional, help: "The new maxTrialCount.") var maxTrials: Int?
    @Option(parsing: .unconditional, help: "The new parallelTrialCount.") var parallel: Int?
    @Option(parsing: .unconditional, help: "The new maxFailedTrialCount.") var maxFailed: Int?
    @Flag(help: "Apply a budget below what the experiment has already used, although it ends the experiment and kills its running trials.")
    var force = false
    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        for (flag, value, least) in [("--max-trials", maxTrials, 1), ("--parallel", parallel, 1), ("--max-failed", maxFailed, 0)] {
            if let value, value < least { throw ValidationError("\(flag) takes a whole number of at least \(least), found \(value)") }
        }
    }

    func run() async throws {
        try await reportingErrors {
            // Here rather than in validate(), which runs first: a mistyped option (--max-trial) is told as such.
            if maxTrials == nil, parallel == nil, maxFailed == nil {
                throw UsageError("say what to change: --max-trials N, --parallel N or --max-failed N")
            }
            let client = try await daemonClient(connection, home: homeOptions.knobHome)
            var patch: [String: Int] = [:]
            patch["maxTrialCount"] = maxTrials
            patch["parallelTrialCount"] = parallel
            patch["maxFailedTrialCount"] = maxFailed
            let body = try JSONSerialization.data(withJSONObject: patch)
            let view = try await DataSource.daemon(client).naming(name) {
                try APIJSON.decoder.decode(ExperimentView.self, from: try await client.request("PATCH", "/v1/experiments/\(name)\(force ? "?force=true" : "")", body: body).body)
            }
            let b = view.budget
            print("experiment \(name): \(b.maxTrialCount.map(String.init) ?? "unlimited") trials, \(b.parallelTrialCount) in parallel, "
                  + (b.maxFailedTrialCount.map { "\($0) failures allowed" } ?? "no failure limit"))
        }
    }
}

struct Wait: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wait for an experiment to end.",
        discussion: """
            Exit code 0 when it succeeded, 1 when it failed or was stopped (or when it is Running but nothing drives it, \
            so that it would never end), 3 when --timeout passed first.
            """)

    @Argument(help: "The experiment's name.", completion: .experimentName) var name: String
    @Option(help: "Give up after this many seconds.") var timeout: Double?
    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if let timeout, !(timeout >= 0 && timeout <= 1e9) { throw ValidationError("--timeout takes 0 to 1e9 seconds, found \(timeout)") }
    }

    func run() async throws {
        try await reportingErrors {
            let source = try await DataSource.resolve(connection, home: homeOptions.knobHome)
            let deadline = timeout.map { Date().addingTimeInterval($0) }
            var stranded = StrandedWatch()
            while true {
                let view = try await source.experiment(name)
                if stranded.isStranded(view) {
                    printError(stranded.message(name, source: source, home: homeOptions.knobHome))
                    throw ExitCode(1)
                }
                switch view.status {
                case "Succeeded":
                    print("experiment \(name) succeeded (\(view.reason)): \(view.message)")
                    return
                case "Failed", "Stopped":
                    print("experiment \(name) \(view.status.lowercased()) (\(view.reason)): \(view.message)")
                    throw ExitCode(1)
                default:
                    if let deadline, Date() > deadline {
                        printError("experiment \(name) is still \(view.status) after \(formatValue(timeout!)) s")
                        throw ExitCode(3)
                    }
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
        }
    }
}

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show an experiment and its trials until it ends: in a terminal, redrawn in place to fit it; elsewhere, the changes as they come.")

    @Argument(help: "The experiment's name.", completion: .experimentName) var name: String
    @Option(help: "Seconds between refreshes (0.1 to 3600).") var interval: Double = 1
    @OptionGroup var homeOptions: HomeOptions

    func validate() throws {
        guard interval >= 0.1, interval <= 3600 else { throw ValidationError("--interval takes 0.1 to 3600 seconds, found \(interval)") }
    }
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            let source = try await DataSource.resolve(connection, home: homeOptions.knobHome)
            var screen = WatchScreen(terminal: Terminal(descriptor: 1))
            var stranded = StrandedWatch()
            while true {
                let view = try await source.experiment(name, events: 5)
                if stranded.isStranded(view) {
                    printError(stranded.message(name, source: source, home: homeOptions.knobHome))
                    throw ExitCode(1)
                }
                screen.show(view, trials: try await source.trials(name))
                if ["Succeeded", "Failed", "Stopped"].contains(view.status) {
                    // In a terminal, the prompt comes back under the screen.
                    if screen.terminal != nil { print("") }
                    return
                }
                try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
            }
        }
    }
}

/// A trial's objective for `watch`: its value once it has ended; while it runs, the latest value it
/// reported and how many reports it has made (`0.8123 (4 reports)`); `-` before the first.
func objectiveText(_ trial: TrialRecord, metric: String) -> String {
    if let value = trial.objectiveValue { return formatValue(value) }
    guard trial.state == .running, let latest = trial.observation.first(where: { $0.name == metric }) else { return "-" }
    return "\(formatValue(latest.latest)) (\(latest.count) report\(latest.count == 1 ? "" : "s"))"
}

/// Tells when an experiment that should progress has nothing driving it, so that `wait` and
/// `watch` end with a word instead of waiting forever. A controller takes its lock a moment after
/// the experiment is marked Running: only a few seconds without one count.
struct StrandedWatch {
    var grace: TimeInterval = 3
    private var since: Date?

    mutating func isStranded(_ view: ExperimentView) -> Bool {
        guard view.isStranded else {
            since = nil
            return false
        }
        let first = since ?? Date()
        since = first
        return Date().timeIntervalSince(first) >= grace
    }

    func message(_ name: String, source: DataSource, home: KnobHome) -> String {
        switch source {
        case .daemon:
            return "error: experiment \(name) is Running but knobd no longer drives it (its controller stopped; "
                + "`knob get \(name)` shows the last events and knobd's log says why); start it again with `knob resume \(name)`"
        case .store:
            return "error: experiment \(name) is Running but nothing drives it: no knobd serves \(home.path), and no `knob run` runs it; "
                + "start knobd (`knobd --home \(home.path)`), which resumes it, then wait again"
        }
    }
}

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a trial's output; with -f, keep printing until the trial ends.")

    @Argument(help: "The experiment's name.", completion: .experimentName) var name: String
    @Argument(help: "The trial's name, e.g. mnist-3.", completion: .trialName) var trial: String
    @Flag(name: .shortAndLong, help: "Follow the log while the trial runs.") var follow = false
    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            let source = try await DataSource.resolve(connection, home: homeOptions.knobHome)
            try await source.naming(name) { try await printLog(source) }
        }
    }

    private func printLog(_ source: DataSource) async throws {
        switch source {
        case .daemon(let client):
            try await DataSource.sayingNoTrial(name, trial) {
                try await client.stream("/v1/experiments/\(name)/trials/\(trial)/logs\(follow ? "?follow=true" : "")") { data in
                    FileHandle.standardOutput.write(data)
                }
            }
        case .store(let store):
            let experiment = try await store.requireExperiment(name)
            guard let record = try await store.trial(named: trial), record.experimentId == experiment.id else {
                throw StoreErrorText.noTrial(experiment: name, trial: trial)
            }
            guard let path = record.logPath, let handle = FileHandle(forReadingAtPath: path) else { return }
            defer { try? handle.close() }
            while true {
                if let data = try handle.readToEnd(), !data.isEmpty { FileHandle.standardOutput.write(data) }
                guard follow, let current = try await store.trial(named: trial), !current.state.isFinished else { return }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    enum StoreErrorText: Error, CustomStringConvertible {
        case noTrial(experiment: String, trial: String)
        var description: String {
            switch self {
            case .noTrial(let experiment, let trial): return "experiment \(experiment) has no trial named \(trial); knob trials \(experiment) lists them"
            }
        }
    }
}

struct Daemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start knobd in the foreground (the same as running knobd).",
        discussion: "Arguments after -- go to knobd, e.g. knob daemon -- --listen 127.0.0.1:8123 --token-file token.")

    @OptionGroup var homeOptions: HomeOptions
    @Argument(parsing: .postTerminator, help: "Arguments for knobd.") var arguments: [String] = []

    func run() async throws {
        let knobd = (currentExecutablePath() as NSString).deletingLastPathComponent + "/knobd"
        guard FileManager.default.isExecutableFile(atPath: knobd) else {
            printError("error: knobd is not next to knob (\(knobd)); build it with `swift build --product knobd`")
            throw ExitCode(1)
        }
        let argv = [knobd] + (homeOptions.home.map { ["--home", $0] } ?? []) + arguments
        let cArgs = argv.map { strdup($0) } + [nil]
        // knobd keeps the user's umask for its trials only if it starts with it.
        UserUmask.restore()
        execv(knobd, cArgs)
        printError("error: cannot start \(knobd): \(String(cString: strerror(errno)))")
        throw ExitCode(1)
    }
}
