import ArgumentParser
import Foundation
import Knob
import KnobClient
import Store

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete an experiment: its trials (killed if running), metrics, events and logs.")

    @Argument(help: "The experiment's name.", completion: .experimentName)
    var name: String

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            let home = homeOptions.knobHome
            let source = try await DataSource.resolve(connection, home: home)
            try await source.naming(name) {
                switch source {
                case .daemon(let client):
                    try await client.request("DELETE", "/v1/experiments/\(name)")
                case .store(let store):
                    _ = try await store.requireExperiment(name)
                    let lock = try FileLock.experiment(name, home: home)
                    defer { lock.release() }
                    try await store.deleteExperiment(named: name)
                    home.removeFiles(ofExperiment: name)
                }
            }
            print("deleted experiment \(name)")
        }
    }
}
