import ArgumentParser
import Foundation
import Knob

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List experiments, newest first.",
        discussion: """
            -o json|yaml prints Katib's ExperimentList, whose items are what knob get -o json|yaml prints. \
            -o wide adds the reason, algorithm, budget and best trial, with every digit; -o csv has the same columns.
            """)

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var outputOptions: ListOutputOptions

    func run() async throws {
        try await reportingErrors {
            let source = try await DataSource.resolve(connection, home: homeOptions.knobHome)
            let views = try Self.listing.sorted(try await source.experiments(), by: outputOptions.sortBy)
            guard let mode = outputOptions.output.listingMode else {
                var items: [KatibExperiment] = []
                for view in views { items.append(try KatibExperiment(view: view, specText: try await source.specText(view.name))) }
                _ = try outputOptions.printData(KatibExperimentList(items: items))
                return
            }
            if views.isEmpty, mode != .csv {
                print("no experiments yet: start one with knob run -f SPEC (or knob create -f SPEC with knobd)")
                return
            }
            print(Self.listing.render(views, mode: mode))
        }
    }

    typealias Column = ListingColumn<ExperimentView>

    static var listing: Listing<ExperimentView> {
        Listing(columns: [
            Column("name") { .text($0.name) },
            Column("status") { .text($0.status) },
            Column("trials") { .count($0.trials.values.reduce(0, +)) },
            Column("objective") { .text($0.objective) },
            Column("best", "best-value") { .number($0.bestObjectiveValue) },
            Column("age", "created", in: [.table, .wide]) { .time($0.createdAt) },
            Column("created", in: [.csv]) { .time($0.createdAt) },
            Column("reason", in: [.wide, .csv]) { .text($0.reason) },
            Column("algorithm", in: [.wide, .csv]) { .text($0.algorithm) },
            Column("max-trials", in: [.wide, .csv]) { .number($0.budget.maxTrialCount.map(Double.init)) },
            Column("parallel", in: [.wide, .csv]) { .count($0.budget.parallelTrialCount) },
            Column("best-trial", in: [.wide, .csv]) {
                let name = $0.currentOptimalTrial.bestTrialName
                return .optionalText(name.isEmpty ? nil : name)
            },
        ])
    }
}
