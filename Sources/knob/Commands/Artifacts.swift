import ArgumentParser
import Foundation
import Knob
import KnobClient
import Store

struct ArtifactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "artifacts",
        abstract: "List or download what a trial saved in its KNOB_ARTIFACTS_DIR (a model, a plot).",
        discussion: """
            Without -o: the files, with their sizes. With -o DIR: each file is copied into DIR, keeping its
            path, and DIR's files are printed. --best picks the experiment's best trial: what a pipeline
            calls after `knob wait`.
            """)

    @Argument(help: "The experiment's name.") var name: String
    @Argument(help: "The trial's name, e.g. mnist-3 (or --best).") var trial: String?
    @Flag(help: "The experiment's best trial.") var best = false
    @Option(name: .shortAndLong, help: ArgumentHelp("Copy the files into this folder.", valueName: "dir")) var output: String?
    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        guard (trial == nil) != !best else {
            throw ValidationError(best ? "give a trial or --best, not both" : "name a trial (knob trials \(name) lists them), or give --best")
        }
    }

    func run() async throws {
        try await reportingErrors {
            let source = try await DataSource.resolve(connection, home: homeOptions.knobHome)
            let trialName: String
            if let trial {
                trialName = try await source.trial(name, trial).name
            } else {
                let view = try await source.experiment(name)
                guard !view.currentOptimalTrial.bestTrialName.isEmpty else {
                    printError("experiment \(name) has no best trial yet (\(view.status)); see `knob trials \(name)`")
                    throw ExitCode(1)
                }
                trialName = view.currentOptimalTrial.bestTrialName
            }
            let entries = try await list(source, trialName)
            guard let output else {
                if entries.isEmpty { printError("trial \(trialName) saved no artifacts (its KNOB_ARTIFACTS_DIR is empty)") }
                for entry in entries { print("\(entry.path)\t\(entry.size)") }
                return
            }
            for entry in entries {
                let target = "\(output)/\(entry.path)"
                try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try await copy(source, trialName, entry.path, to: target)
                print(target)
            }
        }
    }

    private func list(_ source: DataSource, _ trialName: String) async throws -> [Artifacts.Entry] {
        switch source {
        case .daemon(let client):
            return try JSONDecoder().decode([Artifacts.Entry].self,
                                            from: try await client.request("GET", "/v1/experiments/\(name)/trials/\(trialName)/artifacts").body)
        case .store:
            return Artifacts(home: homeOptions.knobHome, experiment: name, trial: trialName).list()
        }
    }

    private func copy(_ source: DataSource, _ trialName: String, _ path: String, to target: String) async throws {
        switch source {
        case .daemon(let client):
            let escaped = path.split(separator: "/").map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? String($0) }
            let data = try await client.request("GET", "/v1/experiments/\(name)/trials/\(trialName)/artifacts/\(escaped.joined(separator: "/"))").body
            guard FileManager.default.createFile(atPath: target, contents: data) else { throw CocoaError(.fileWriteUnknown) }
        case .store:
            let file = try Artifacts(home: homeOptions.knobHome, experiment: name, trial: trialName).file(path)
            if FileManager.default.fileExists(atPath: target) { try FileManager.default.removeItem(atPath: target) }
            try FileManager.default.copyItem(atPath: file, toPath: target)
        }
    }
}
