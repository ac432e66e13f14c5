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
            let experiment = try await store.requireExperiment(name)
            if experiment.status == .running {
                printError("note: experiment \(name) is marked Running; if a `knob run` still drives it, stop that first (Ctrl-C)")
            }
            try await store.deleteExperiment(named: name)
            home.removeFiles(ofExperiment: name)
            print("deleted experiment \(name)")
        }
    }
}
