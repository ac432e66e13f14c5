import ArgumentParser
import Foundation
import Knob
import Store

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete an experiment: its trials, metrics, events and logs.")

    @Argument(help: "The experiment's name.")
    var name: String

    @OptionGroup var homeOptions: HomeOptions

    func run() async throws {
        try await reportingErrors {
            let home = homeOptions.knobHome
            let store = try home.openExistingStore()
            _ = try await store.requireExperiment(name)
            let lock = try FileLock.experiment(name, home: home)
            defer { lock.release() }
            try await store.deleteExperiment(named: name)
            home.removeFiles(ofExperiment: name)
            print("deleted experiment \(name)")
        }
    }
}
