import ArgumentParser
import Foundation
import Knob
import KnobClient
import Store

/// How the CLI reaches knobd: its Unix socket (default `<home>/knobd.sock`) or a TCP URL with a token.
struct ConnectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("knobd's Unix socket (default: knobd.sock in the home).", valueName: "path"), completion: .file())
    var socket: String?

    @Option(help: ArgumentHelp("knobd over TCP, e.g. http://10.0.0.5:8123 (with --token-file).", valueName: "url"))
    var server: String?

    @Option(help: ArgumentHelp("A file whose first line is knobd's bearer token.", valueName: "file"), completion: .file())
    var tokenFile: String?

    func client(home: KnobHome) throws -> KnobClient {
        if let server {
            var token: String?
            if let tokenFile {
                guard let line = (try? String(contentsOfFile: tokenFile, encoding: .utf8))?.split(whereSeparator: \.isNewline).first else {
                    throw ValidationError("--token-file \(tokenFile): cannot read a token from its first line")
                }
                token = String(line).trimmingCharacters(in: .whitespaces)
            }
            return KnobClient(.tcp(baseURL: server, token: token))
        }
        return KnobClient(.unixSocket(socket.map(KnobHome.absolute) ?? "\(home.path)/knobd.sock"))
    }
}

/// Where the read commands get their data: knobd when it answers, else the store in the home
/// (said on stderr).
enum DataSource {
    case daemon(KnobClient)
    case store(Store)

    static func resolve(_ connection: ConnectionOptions, home: KnobHome) async throws -> DataSource {
        let client = try connection.client(home: home)
        do {
            try await client.request("GET", "/healthz", timeout: 5)
            return .daemon(client)
        } catch let error as KnobClient.ClientError {
            guard case .unreachable = error, connection.server == nil else { throw error }
            printError("note: no knobd answers at \(client.endpoint); reading the store in \(home.path) directly")
            return .store(try home.openExistingStore())
        }
    }

    /// Runs `body`; when it fails because no experiment has that name, the error names the
    /// existing experiments closest to `name`.
    @discardableResult
    func naming<T>(_ name: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error where Self.saysNoExperiment(error) {
            let names = (try? await experimentNames()) ?? []
            throw NoExperiment(name: name, nearest: closest(name, in: names))
        }
    }

    static func saysNoExperiment(_ error: any Error) -> Bool {
        switch error {
        case StoreError.experimentNotFound: return true
        case KnobClient.ClientError.api(404, "NotFound", let message): return message.hasPrefix("no experiment")
        default: return false
        }
    }

    func experimentNames() async throws -> [String] {
        switch self {
        case .daemon: return try await experiments().map(\.name)
        case .store(let store): return try await store.experiments().map(\.name)
        }
    }

    func experiments() async throws -> [ExperimentView] {
        switch self {
        case .daemon(let client):
            return try APIJSON.decoder.decode([ExperimentView].self, from: try await client.request("GET", "/v1/experiments").body)
        case .store(let store):
            var views: [ExperimentView] = []
            for experiment in try await store.experiments() { views.append(try await ExperimentView.load(experiment, store: store)) }
            return views
        }
    }

    func experiment(_ name: String, events: Int? = nil) async throws -> ExperimentView {
        try await naming(name) {
            switch self {
            case .daemon(let client):
                return try APIJSON.decoder.decode(ExperimentView.self, from: try await client.request("GET", "/v1/experiments/\(name)").body)
            case .store(let store):
                return try await ExperimentView.load(try await store.requireExperiment(name), store: store, events: events)
            }
        }
    }

    /// The experiment's spec as it was given.
    func specText(_ name: String) async throws -> String {
        try await naming(name) {
            switch self {
            case .daemon(let client):
                return String(decoding: try await client.request("GET", "/v1/experiments/\(name)/spec").body, as: UTF8.self)
            case .store(let store):
                return try await store.requireExperiment(name).specText
            }
        }
    }

    /// The experiment as Katib's `Experiment` object.
    func katibExperiment(_ name: String, events: Int? = nil) async throws -> KatibExperiment {
        var view = try await experiment(name, events: events)
        // knobd answers with its own number of events: keep as many as asked, as the store does.
        if let events, let all = view.events { view.events = Array(all.suffix(events)) }
        return try KatibExperiment(view: view, specText: try await specText(name))
    }

    /// One trial of an experiment.
    func trial(_ experiment: String, _ trial: String) async throws -> TrialRecord {
        try await naming(experiment) { try await trialRecord(experiment, trial) }
    }

    private func trialRecord(_ experiment: String, _ trial: String) async throws -> TrialRecord {
        switch self {
        case .daemon(let client):
            return try await Self.sayingNoTrial(experiment, trial) {
                try APIJSON.decoder.decode(TrialRecord.self, from: try await client.request("GET", "/v1/experiments/\(experiment)/trials/\(trial)").body)
            }
        case .store(let store):
            let owner = try await store.requireExperiment(experiment)
            guard let record = try await store.trial(named: trial), record.experimentId == owner.id else {
                throw Logs.StoreErrorText.noTrial(experiment: experiment, trial: trial)
            }
            return record
        }
    }

    /// `body`, with knobd's 404 for a trial the experiment does not have told as the store path tells it.
    static func sayingNoTrial<T>(_ experiment: String, _ trial: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch KnobClient.ClientError.api(404, "NotFound", let message) where !message.hasPrefix("no experiment") {
            throw Logs.StoreErrorText.noTrial(experiment: experiment, trial: trial)
        }
    }

    /// A trial's whole log (empty before it starts).
    func log(_ experiment: String, _ trial: String) async throws -> Data {
        switch self {
        case .daemon(let client):
            return try await naming(experiment) {
                try await client.request("GET", "/v1/experiments/\(experiment)/trials/\(trial)/logs").body
            }
        case .store:
            let record = try await self.trial(experiment, trial)
            return record.logPath.flatMap { FileManager.default.contents(atPath: $0) } ?? Data()
        }
    }

    /// Every report of a trial, in the order they were read.
    func metrics(_ experiment: String, _ trial: String) async throws -> [MetricRecord] {
        switch self {
        case .daemon(let client):
            return try await naming(experiment) {
                try await Self.sayingNoTrial(experiment, trial) {
                    try APIJSON.decoder.decode([MetricRecord].self,
                                               from: try await client.request("GET", "/v1/experiments/\(experiment)/trials/\(trial)/metrics").body)
                }
            }
        case .store(let store):
            let record = try await self.trial(experiment, trial)
            return try await store.metrics(ofTrial: record.id!)
        }
    }

    func trials(_ name: String) async throws -> [TrialRecord] {
        try await naming(name) {
            switch self {
            case .daemon(let client):
                return try APIJSON.decoder.decode([TrialRecord].self, from: try await client.request("GET", "/v1/experiments/\(name)/trials").body)
            case .store(let store):
                return try await store.trials(of: try await store.requireExperiment(name).id!)
            }
        }
    }
}

/// No experiment has the name a command was given.
struct NoExperiment: Error, CustomStringConvertible {
    var name: String
    /// The existing name closest to it, when one is near.
    var nearest: String?

    var description: String {
        "no experiment named \(name); \(nearest.map { "did you mean \($0)? " } ?? "")knob list shows the experiments"
    }
}

/// Runs `body`; an error is shown once, on one line of stderr (`error: …`, saying what to do
/// where knob knows), and the command exits 1. Exit codes and usage errors pass through.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch let error as UsageError {
        printError("error: \(error)")
        throw ExitCode(2)
    } catch {
        printError("error: \(userMessage(error))")
        throw ExitCode(1)
    }
}

/// Wrong usage that shows only once the command runs (ArgumentParser's own checks come first, so
/// that a mistyped option gets its "did you mean"): `error: …` and exit code 2, as any usage error.
struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// An error as a person reads it: knob's errors say it themselves (their description); a
/// system error says its reason, not its domain and code.
func userMessage(_ error: any Error) -> String {
    if error is CocoaError || type(of: error) == NSError.self {
        return (error as NSError).localizedDescription
    }
    return String(describing: error)
}
