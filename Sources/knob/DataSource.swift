import ArgumentParser
import Foundation
import Knob
import KnobClient
import Store

/// How the CLI reaches knobd: its Unix socket (default `<home>/knobd.sock`) or a TCP URL with a token.
struct ConnectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("knobd's Unix socket (default: knobd.sock in the home).", valueName: "path"))
    var socket: String?

    @Option(help: ArgumentHelp("knobd over TCP, e.g. http://10.0.0.5:8123 (with --token-file).", valueName: "url"))
    var server: String?

    @Option(help: ArgumentHelp("A file whose first line is knobd's bearer token.", valueName: "file"))
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
        switch self {
        case .daemon(let client):
            return try APIJSON.decoder.decode(ExperimentView.self, from: try await client.request("GET", "/v1/experiments/\(name)").body)
        case .store(let store):
            return try await ExperimentView.load(try await store.requireExperiment(name), store: store, events: events)
        }
    }

    /// One trial of an experiment.
    func trial(_ experiment: String, _ trial: String) async throws -> TrialRecord {
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
            return try await client.request("GET", "/v1/experiments/\(experiment)/trials/\(trial)/logs").body
        case .store:
            let record = try await self.trial(experiment, trial)
            return record.logPath.flatMap { FileManager.default.contents(atPath: $0) } ?? Data()
        }
    }

    func trials(_ name: String) async throws -> [TrialRecord] {
        switch self {
        case .daemon(let client):
            return try APIJSON.decoder.decode([TrialRecord].self, from: try await client.request("GET", "/v1/experiments/\(name)/trials").body)
        case .store(let store):
            return try await store.trials(of: try await store.requireExperiment(name).id!)
        }
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
    } catch {
        printError("error: \(userMessage(error))")
        throw ExitCode(1)
    }
}

/// An error as a person reads it: knob's errors say it themselves (their description); a
/// system error says its reason, not its domain and code.
func userMessage(_ error: any Error) -> String {
    if error is CocoaError || type(of: error) == NSError.self {
        return (error as NSError).localizedDescription
    }
    return String(describing: error)
}
