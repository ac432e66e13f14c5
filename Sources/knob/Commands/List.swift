import ArgumentParser
import Foundation
import Knob

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List experiments, newest first.")

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var outputOptions: OutputOptions

    func run() async throws {
        try await reportingErrors {
            let views = try await DataSource.resolve(connection, home: homeOptions.knobHome).experiments()
            if try outputOptions.printData(views) { return }
            if views.isEmpty {
                print("no experiments yet: start one with knob run -f SPEC (or knob create -f SPEC with knobd)")
                return
            }
            print(table(["NAME", "STATUS", "TRIALS", "OBJECTIVE", "BEST", "AGE"], views.map {
                [$0.name, $0.status, String($0.trials.values.reduce(0, +)), $0.objective,
                 $0.bestObjectiveValue.map(formatValue) ?? "-", age($0.createdAt)]
            }))
        }
    }
}
