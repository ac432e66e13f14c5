import Testing
@testable import KnobAlgorithms

/// Properties every suggester must have, run for each registered algorithm.
@Suite struct SuggesterConformanceTests {
    /// Spaces every suggester must handle: one parameter of each kind, a mixed one, a tiny finite one.
    static let spaces: [(String, SearchSpace)] = [
        ("single double", SearchSpace([Parameter(name: "x", kind: .double(min: -1, max: 1, step: 0.25, scale: .linear))])),
        ("single int", SearchSpace([Parameter(name: "n", kind: .int(min: 1, max: 100, step: 1, scale: .log))])),
        ("single categorical", SearchSpace([Parameter(name: "c", kind: .categorical(["a", "b", "c"]))])),
        ("mixed", SearchSpace([
            Parameter(name: "lr", kind: .double(min: 0.001, max: 0.1, step: nil, scale: .log)),
            Parameter(name: "m", kind: .double(min: 0.5, max: 0.9, step: nil, scale: .linear)),
            Parameter(name: "layers", kind: .int(min: 1, max: 4, step: 1, scale: .linear)),
            Parameter(name: "batch", kind: .discrete(["16", "32", "64"])),
            Parameter(name: "opt", kind: .categorical(["sgd", "adam"])),
        ])),
        ("tiny finite", SearchSpace([
            Parameter(name: "a", kind: .int(min: 0, max: 2, step: 1, scale: .linear)),
            Parameter(name: "b", kind: .categorical(["x", "y"])),
        ])),
    ]

    /// Settings an algorithm needs to run on every space above.
    static let settings: [String: [String: String]] = [
        "grid": ["grid_points": "5"],
        // Few initial points, so that the model's suggestions are checked too.
        "bayesianoptimization": ["n_initial_points": "3", "n_candidates": "64"],
        "gp": ["n_initial_points": "3", "n_candidates": "64"],
        "tpe": ["n_startup_trials": "3"],
        "multivariate-tpe": ["n_startup_trials": "3"],
        "hyperband": ["resource_name": "epochs", "r_l": "9"],
    ]

    /// A parameter an algorithm needs beside those it searches (hyperband's budget); added to every space for it.
    static let addedParameters: [String: Parameter] = [
        "hyperband": Parameter(name: "epochs", kind: .int(min: 1, max: 9, step: 1, scale: .linear)),
    ]

    /// The spaces above as `algorithm` runs on them.
    static func spaces(for algorithm: String) -> [(String, SearchSpace)] {
        guard let added = addedParameters[algorithm] else { return spaces }
        return spaces.map { ($0.0, SearchSpace($0.1.parameters + [added])) }
    }

    static func make(_ algorithm: String, _ space: SearchSpace, seed: UInt64 = 42) throws -> any Suggester {
        try SuggesterRegistry.make(algorithm, context: SuggesterContext(space: space, settings: settings[algorithm] ?? [:], seed: seed))
    }

    /// A history of `count` trials built from the suggester's own proposals, alternately completed and failed.
    static func history(_ suggester: any Suggester, space: SearchSpace, count: Int, pending: Int = 0) throws -> History {
        var history = History()
        while history.trials.count < count + pending {
            guard let next = try? suggester.suggest(count: 1, history: history).first else { break }
            let done = history.trials.count < count
            let value = space.encode(next.assignment).reduce(0) { $0 + ($1 - 0.3) * ($1 - 0.3) }
            let outcome: History.Trial.Outcome = !done ? .pending : history.trials.count % 5 == 4 ? .failed : .completed(value)
            history.trials.append(.init(assignment: next.assignment, outcome: outcome, metadata: next.metadata))
        }
        return history
    }

    @Test(arguments: SuggesterRegistry.names)
    func suggestionsAreValidAndOfTheRightType(_ algorithm: String) throws {
        for (label, space) in Self.spaces(for: algorithm) {
            let suggester = try Self.make(algorithm, space)
            for size in [0, 3, 10] {
                let history = try Self.history(suggester, space: space, count: size)
                let suggestions: [Suggestion]
                do {
                    suggestions = try suggester.suggest(count: 4, history: history)
                } catch SuggesterError.exhausted where size > 0 {
                    continue  // a finite space may be used up by its own history
                }
                #expect(!suggestions.isEmpty, "\(algorithm) on \(label): no suggestion")
                for suggestion in suggestions {
                    #expect(space.contains(suggestion.assignment), "\(algorithm) on \(label): \(suggestion.assignment) is not in the space")
                    for parameter in space.parameters {
                        let value = suggestion.assignment[parameter.name]
                        switch (parameter.kind, value) {
                        case (.double, .double?), (.int, .int?), (.discrete, .string?), (.categorical, .string?): break
                        default: Issue.record("\(algorithm) on \(label): \(parameter.name) has \(String(describing: value))")
                        }
                    }
                }
            }
        }
    }

    @Test(arguments: SuggesterRegistry.names)
    func sameSeedAndHistoryGiveTheSameSuggestions(_ algorithm: String) throws {
        for (label, space) in Self.spaces(for: algorithm) {
            let history = try Self.history(Self.make(algorithm, space), space: space, count: 4)
            let a = try? Self.make(algorithm, space).suggest(count: 3, history: history)
            let b = try? Self.make(algorithm, space).suggest(count: 3, history: history)
            #expect(a == b, "\(algorithm) on \(label) is not reproducible")
        }
    }

    @Test(arguments: SuggesterRegistry.names)
    func neverDuplicatesAPendingAssignmentWhenTheSpaceAllows(_ algorithm: String) throws {
        for (label, space) in Self.spaces(for: algorithm) {
            let suggester = try Self.make(algorithm, space)
            let history = try Self.history(suggester, space: space, count: 2, pending: 2)
            let pendingKeys = Set(history.pending.map { space.key($0.assignment) })
            guard let suggestions = try? suggester.suggest(count: 2, history: history) else { continue }
            let keys = suggestions.map { space.key($0.assignment) }
            #expect(Set(keys).count == keys.count, "\(algorithm) on \(label): duplicates within one batch")
            #expect(pendingKeys.isDisjoint(with: keys), "\(algorithm) on \(label): repeats a pending assignment")
        }
    }

    @Test(arguments: SuggesterRegistry.names)
    func rejectsUnknownSettings(_ algorithm: String) throws {
        let space = Self.spaces(for: algorithm)[0].1
        // The algorithm's own settings are accepted, so that the unknown one is what is refused.
        _ = try Self.make(algorithm, space)
        var settings = Self.settings[algorithm] ?? [:]
        settings["no_such_setting"] = "1"
        let error = #expect(throws: SuggesterError.self) {
            try SuggesterRegistry.make(algorithm, context: SuggesterContext(space: space, settings: settings, seed: 1))
        }
        guard case .invalidSetting(let name, _)? = error else {
            Issue.record("\(algorithm): \(String(describing: error)) is not about the unknown setting")
            return
        }
        #expect(name == "no_such_setting", "\(algorithm)")
    }

    @Test func unknownAlgorithmNamesTheKnownOnes() {
        let error = #expect(throws: SuggesterError.self) {
            try SuggesterRegistry.make("hyperopt-anneal", context: SuggesterContext(space: Self.spaces[0].1, seed: 1))
        }
        #expect(error?.description.contains("random") == true)
        #expect(error?.description.contains("hyperband") == true)
    }

    @Test(arguments: ["pbt", "enas", "darts"])
    func katibAlgorithmsKnobDoesNotRunAreRefusedByName(_ name: String) {
        let error = #expect(throws: SuggesterError.self) {
            try SuggesterRegistry.make(name, context: SuggesterContext(space: Self.spaces[0].1, seed: 1))
        }
        let message = error?.description ?? ""
        #expect(message.contains("\"\(name)\""), "\(message)")
        #expect(message.contains(name == "pbt" ? "population-based training" : "neural architecture search"), "\(message)")
        #expect(message.contains("not supported"), "\(message)")
    }
}
