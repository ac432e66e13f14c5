import Foundation
import Testing
@testable import KnobAlgorithms

@Suite struct HyperbandTests {
    static let space = SearchSpace([
        Parameter(name: "lr", kind: .double(min: 0.001, max: 0.1, step: nil, scale: .log)),
        Parameter(name: "epochs", kind: .int(min: 1, max: 81, step: 1, scale: .linear)),
        Parameter(name: "momentum", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
    ])

    static func make(_ settings: [String: String], space: SearchSpace = space, seed: UInt64 = 7) throws -> HyperbandSuggester {
        try HyperbandSuggester(context: SuggesterContext(space: space, settings: settings, seed: seed))
    }

    /// A loss that prefers lr near 0.01 and momentum near 0.3, and more epochs.
    static func loss(_ assignment: Assignment) -> Double {
        let lr = assignment["lr"]!.numericValue!, momentum = assignment["momentum"]!.numericValue!
        let epochs = assignment["epochs"]!.numericValue!
        return pow(log10(lr) + 2, 2) + pow(momentum - 0.3, 2) + 1 / epochs
    }

    /// Where a trial stands in the schedule, from its metadata.
    static func position(_ trial: History.Trial) -> (bracket: Int, rung: Int, configuration: Int) {
        (Int(trial.metadata["hyperband.bracket"]!)!, Int(trial.metadata["hyperband.rung"]!)!, Int(trial.metadata["hyperband.config"]!)!)
    }

    /// Runs an experiment to the suggester's end in memory: `parallel` trials at a time, a random one
    /// of the running trials ending next; `outcome` gives each trial's result.
    static func run(_ suggester: HyperbandSuggester, parallel: Int, seed: UInt64 = 1,
                    outcome: (Assignment) -> History.Trial.Outcome = { .completed(loss($0)) }) throws -> History {
        var history = History()
        var rng = SeededGenerator(seed: seed)
        var exhausted = false
        while true {
            let running = history.trials.indices.filter { history.trials[$0].outcome == .pending }
            if !exhausted, running.count < parallel {
                do {
                    let next = try suggester.suggest(count: parallel - running.count, history: history)
                    #expect(next.count <= parallel - running.count)
                    history.trials += next.map { History.Trial(assignment: $0.assignment, outcome: .pending, metadata: $0.metadata) }
                    if !next.isEmpty { continue }
                } catch SuggesterError.exhausted {
                    exhausted = true
                }
            }
            if running.isEmpty {
                #expect(exhausted, "nothing running and nothing suggested, yet the schedule is not over")
                return history
            }
            let ending = running[Int(rng.next() % UInt64(running.count))]
            history.trials[ending].outcome = outcome(history.trials[ending].assignment)
        }
    }

    // MARK: The schedule

    /// Li et al. 2018, Table 1 (R = 81, η = 3): (n_i, r_i) for each bracket s = 4 … 0.
    @Test func scheduleForR81MatchesLiEtAlTable1() {
        let schedule = HyperbandSchedule(maxResource: 81, eta: 3)
        #expect(schedule.sMax == 4)
        #expect(schedule.brackets.map(\.s) == [4, 3, 2, 1, 0])
        let table: [[(Int, Double)]] = [
            [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
            [(34, 3), (11, 9), (3, 27), (1, 81)],
            [(15, 9), (5, 27), (1, 81)],
            [(8, 27), (2, 81)],
            [(5, 81)],
        ]
        for (bracket, expected) in zip(schedule.brackets, table) {
            #expect(bracket.rungs.map(\.configurations) == expected.map(\.0), "bracket \(bracket.s)")
            #expect(bracket.rungs.map(\.resource) == expected.map(\.1), "bracket \(bracket.s)")
        }
        #expect(schedule.trialCount == 121 + 49 + 21 + 10 + 5)
    }

    /// The same rules for R = 9, η = 3: s_max = 2.
    @Test func scheduleForR9() {
        let schedule = HyperbandSchedule(maxResource: 9, eta: 3)
        #expect(schedule.sMax == 2)
        let table: [[(Int, Double)]] = [
            [(9, 1), (3, 3), (1, 9)],
            [(5, 3), (1, 9)],
            [(3, 9)],
        ]
        #expect(schedule.brackets.map(\.s) == [2, 1, 0])
        for (bracket, expected) in zip(schedule.brackets, table) {
            #expect(bracket.rungs.map(\.configurations) == expected.map(\.0), "bracket \(bracket.s)")
            #expect(bracket.rungs.map(\.resource) == expected.map(\.1), "bracket \(bracket.s)")
        }
        #expect(schedule.trialCount == 22)
        #expect(schedule.totalResource == 9 + 9 + 9 + 15 + 9 + 27)
    }

    @Test func sMaxIsExactForPowersOfEtaAndFloorsOthers() {
        #expect(HyperbandSchedule(maxResource: 243, eta: 3).sMax == 5)
        #expect(HyperbandSchedule(maxResource: 1000, eta: 10).sMax == 3)
        #expect(HyperbandSchedule(maxResource: 80, eta: 3).sMax == 3)
        #expect(HyperbandSchedule(maxResource: 2, eta: 2).sMax == 1)
        #expect(HyperbandSchedule(maxResource: 2.5, eta: 2).brackets.map { $0.rungs.map(\.resource) } == [[1.25, 2.5], [2.5]])
    }

    // MARK: Trials

    @Test(arguments: [(9, 1), (9, 4), (81, 1), (81, 7), (81, 200)])
    func everyRungRunsItsTableSizeWithItsResource(maxResource: Int, parallel: Int) throws {
        let suggester = try Self.make(["resource_name": "epochs", "r_l": String(maxResource)])
        let history = try Self.run(suggester, parallel: parallel)
        #expect(history.trials.count == suggester.schedule.trialCount)
        var counts: [[Int]] = suggester.schedule.brackets.map { [Int](repeating: 0, count: $0.rungs.count) }
        for trial in history.trials {
            let (s, i, _) = Self.position(trial)
            let rung = suggester.schedule.bracket(s)!.rungs[i]
            #expect(trial.assignment["epochs"] == .int(Int(rung.resource)), "bracket \(s) rung \(i)")
            #expect(Self.space.contains(trial.assignment))
            counts[suggester.schedule.sMax - s][i] += 1
        }
        #expect(counts == suggester.schedule.brackets.map { $0.rungs.map(\.configurations) })
    }

    @Test(arguments: [1, 3, 50])
    func onlyTheBestOfARungArePromoted(parallel: Int) throws {
        let suggester = try Self.make(["resource_name": "epochs", "r_l": "81"])
        let history = try Self.run(suggester, parallel: parallel)
        var rungs: [[Int]: [History.Trial]] = [:]
        for trial in history.trials {
            let (s, i, _) = Self.position(trial)
            rungs[[s, i], default: []].append(trial)
        }
        var promotions = 0
        for bracket in suggester.schedule.brackets {
            for i in 1..<bracket.rungs.count {
                let previous = rungs[[bracket.s, i - 1]]!.sorted { Self.loss($0.assignment) < Self.loss($1.assignment) }
                let current = rungs[[bracket.s, i]]!
                let expected = previous.prefix(bracket.rungs[i].configurations).map { Self.position($0).configuration }
                #expect(Set(current.map { Self.position($0).configuration }) == Set(expected), "bracket \(bracket.s) rung \(i)")
                // A promoted configuration keeps its values; only the resource grows.
                for trial in current {
                    let before = previous.first { Self.position($0).configuration == Self.position(trial).configuration }!
                    #expect(before.assignment["lr"] == trial.assignment["lr"] && before.assignment["momentum"] == trial.assignment["momentum"])
                    #expect(trial.assignment["epochs"]!.numericValue! == 3 * before.assignment["epochs"]!.numericValue!)
                    promotions += 1
                }
            }
        }
        #expect(promotions == 27 + 9 + 3 + 1 + 11 + 3 + 1 + 5 + 1 + 2)
        // Brackets draw different configurations.
        let starts = Set(history.trials.filter { Self.position($0).rung == 0 }.map { $0.assignment["lr"]! })
        #expect(starts.count == 81 + 34 + 15 + 8 + 5)
    }

    /// What a run creates depends on the results only, not on how many trials ran at once or in
    /// which order they ended: a restarted process that continues from the history does the same.
    @Test func theTrialsDependOnTheResultsOnlyNotOnTiming() throws {
        let suggester = try Self.make(["resource_name": "epochs", "r_l": "27"])
        func summary(_ history: History) -> Set<[String]> {
            Set(history.trials.map { trial in
                let (s, i, c) = Self.position(trial)
                return ["\(s)", "\(i)", "\(c)"] + Self.space.key(trial.assignment)
            })
        }
        let sequential = summary(try Self.run(suggester, parallel: 1))
        #expect(sequential.count == suggester.schedule.trialCount)
        for (parallel, seed) in [(2, 3), (5, 4), (40, 5)] as [(Int, UInt64)] {
            #expect(summary(try Self.run(suggester, parallel: parallel, seed: seed)) == sequential, "parallel \(parallel)")
        }
    }

    @Test func aHistoryCutInTheMiddleOfABracketContinuesWithWhatIsMissing() throws {
        let suggester = try Self.make(["resource_name": "epochs", "r_l": "9"])
        let full = try Self.run(suggester, parallel: 1)
        // Every prefix of a sequential run, its last trial still running: the next suggestion is
        // the run's next trial, and no trial of the prefix comes again.
        for cut in 1..<full.trials.count {
            var history = History(Array(full.trials.prefix(cut)))
            history.trials[cut - 1].outcome = .pending
            let waiting = try suggester.suggest(count: 1, history: history)
            let finished = { () -> History in
                var h = history
                h.trials[cut - 1].outcome = full.trials[cut - 1].outcome
                return h
            }()
            let next = try suggester.suggest(count: 1, history: finished)
            #expect(next.map(\.assignment) == [full.trials[cut].assignment], "after \(cut) trials")
            #expect(next.map(\.metadata) == [full.trials[cut].metadata], "after \(cut) trials")
            // While a trial runs, a suggestion is either the same next one or one of a later bracket, never a repeat.
            for suggestion in waiting {
                #expect(!history.trials.contains { $0.metadata == suggestion.metadata }, "after \(cut) trials: \(suggestion.metadata) again")
            }
        }
        #expect(throws: SuggesterError.exhausted) { try suggester.suggest(count: 1, history: full) }
    }

    @Test func whileEveryBracketWaitsNothingIsSuggestedAndNothingEnds() throws {
        let suggester = try Self.make(["resource_name": "epochs", "r_l": "9"])
        var history = History()
        let first = try suggester.suggest(count: 100, history: history)
        // Rung 0 of every bracket at once: 9 + 5 + 3 configurations.
        #expect(first.count == 17)
        history.trials = first.map { History.Trial(assignment: $0.assignment, outcome: .pending, metadata: $0.metadata) }
        #expect(try suggester.suggest(count: 5, history: history).isEmpty)
        // One bracket's rung 0 ends: its best 3 are promoted, and nothing else moves.
        for index in 0..<9 { history.trials[index].outcome = .completed(Self.loss(history.trials[index].assignment)) }
        let promoted = try suggester.suggest(count: 5, history: history)
        #expect(promoted.count == 3)
        #expect(promoted.allSatisfy { $0.metadata["hyperband.bracket"] == "2" && $0.metadata["hyperband.rung"] == "1" && $0.assignment["epochs"] == .int(3) })
        let ranked = history.trials.prefix(9).sorted { Self.loss($0.assignment) < Self.loss($1.assignment) }
        #expect(promoted.map { $0.assignment["lr"] } == ranked.prefix(3).map { $0.assignment["lr"] }, "best first")
    }

    @Test func failedTrialsAreNeverPromoted() throws {
        let suggester = try Self.make(["resource_name": "epochs", "r_l": "9"])
        var history = History(try suggester.suggest(count: 9, history: History()).map {
            History.Trial(assignment: $0.assignment, outcome: .failed, metadata: $0.metadata)
        })
        history.trials[2].outcome = .completed(5)
        history.trials[6].outcome = .completed(.nan)
        history.trials[7].outcome = .completed(4)
        let promoted = try suggester.suggest(count: 9, history: history)
        // Two completed where three would go on: those two, best first, then bracket 1's start.
        #expect(promoted.prefix(2).map(\.metadata["hyperband.config"]) == ["7", "2"])
        #expect(promoted.prefix(2).allSatisfy { $0.metadata["hyperband.rung"] == "1" })
        #expect(promoted.dropFirst(2).map { $0.metadata["hyperband.bracket"]! + "/" + $0.metadata["hyperband.rung"]! }
                == ["1/0", "1/0", "1/0", "1/0", "1/0", "0/0", "0/0"])

        // A rung in which every trial failed ends its bracket.
        history.trials[2].outcome = .failed
        history.trials[7].outcome = .failed
        let next = try suggester.suggest(count: 9, history: history)
        #expect(next.allSatisfy { $0.metadata["hyperband.bracket"] != "2" })
    }

    @Test func aDoubleResourceGetsExactAmountsAndAnIntOneRoundedAmounts() throws {
        let double = SearchSpace([
            Parameter(name: "x", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
            Parameter(name: "budget", kind: .double(min: 0.5, max: 10, step: nil, scale: .linear)),
        ])
        let suggester = try Self.make(["resource_name": "budget", "r_l": "10"], space: double)
        let resources = Set(try Self.run(suggester, parallel: 3) { .completed($0["x"]!.numericValue!) }.trials.map { $0.assignment["budget"]! })
        let exact: Set<ParameterValue> = [.double(10.0 / 9), .double(10.0 / 3), .double(10)]
        #expect(resources == exact)

        let int = SearchSpace([double.parameters[0], Parameter(name: "budget", kind: .int(min: 1, max: 10, step: 1, scale: .linear))])
        let wholes = try Self.make(["resource_name": "budget", "r_l": "10"], space: int)
        let amounts = Set(try Self.run(wholes, parallel: 3) { .completed($0["x"]!.numericValue!) }.trials.map { $0.assignment["budget"]! })
        let rounded: Set<ParameterValue> = [.int(1), .int(3), .int(10)]
        #expect(amounts == rounded)
    }

    @Test func aResourceOutsideItsFeasibleSpaceIsSetAnyway() throws {
        // Katib's own example: num-epochs in [1, 1], r_l 2, eta 2.
        let space = SearchSpace([
            Parameter(name: "lr", kind: .double(min: 0.01, max: 0.03, step: nil, scale: .linear)),
            Parameter(name: "num-epochs", kind: .int(min: 1, max: 1, step: 1, scale: .linear)),
        ])
        let suggester = try Self.make(["resource_name": "num-epochs", "r_l": "2", "eta": "2"], space: space)
        let history = try Self.run(suggester, parallel: 2) { .completed($0["lr"]!.numericValue!) }
        #expect(history.trials.map { $0.assignment["num-epochs"]! } == [.int(1), .int(1), .int(2), .int(2), .int(2)])
    }

    @Test func aSmallFiniteSpaceShrinksTheBracketsWithoutRepeats() throws {
        let space = SearchSpace([
            Parameter(name: "opt", kind: .categorical(["sgd", "adam", "rmsprop", "adagrad"])),
            Parameter(name: "epochs", kind: .int(min: 1, max: 9, step: 1, scale: .linear)),
        ])
        let suggester = try Self.make(["resource_name": "epochs", "r_l": "9"], space: space)
        let history = try Self.run(suggester, parallel: 2) { .completed(Double(["sgd", "adam", "rmsprop", "adagrad"].firstIndex(of: $0["opt"]!.description)!)) }
        var rungs: [[Int]: [String]] = [:]
        for trial in history.trials {
            let (s, i, _) = Self.position(trial)
            rungs[[s, i], default: []].append(trial.assignment["opt"]!.description)
        }
        // 4 of 9 in bracket 2: ⌊4/3⌋ = 1 goes on to rung 1, none to rung 2; 4 of 5 in bracket 1; 3 in bracket 0.
        #expect(rungs[[2, 0]]?.count == 4 && Set(rungs[[2, 0]]!).count == 4)
        #expect(rungs[[2, 1]] == ["sgd"] && rungs[[2, 2]] == nil)
        #expect(rungs[[1, 0]]?.count == 4 && Set(rungs[[1, 0]]!).count == 4 && rungs[[1, 1]] == ["sgd"])
        #expect(rungs[[0, 0]]?.count == 3 && Set(rungs[[0, 0]]!).count == 3)
    }

    // MARK: Settings

    @Test func defaultsAndAcceptedSettings() throws {
        let suggester = try Self.make(["resource_name": " epochs ", "r_l": "81"])
        #expect(suggester.schedule.eta == 3 && suggester.schedule.maxResource == 81 && suggester.resource.name == "epochs")
        #expect(try Self.make(["resource_name": "lr", "r_l": "0.1e2", "eta": "2", "random_state": "-4"]).schedule.sMax == 3)
    }

    @Test(arguments: [
        ([:], "resource_name", "hyperband needs it"),
        (["r_l": "9"], "resource_name", "one of lr, epochs, momentum"),
        (["resource_name": "epoch", "r_l": "9"], "resource_name", "\"epoch\" is not a parameter of the spec; one of lr, epochs, momentum"),
        (["resource_name": "epochs"], "r_l", "hyperband needs it"),
        (["resource_name": "epochs", "r_l": "nine"], "r_l", "\"nine\" is not a number in 3...1000000000"),
        (["resource_name": "epochs", "r_l": "2"], "r_l", "at least eta, 3"),
        (["resource_name": "epochs", "r_l": "inf"], "r_l", "is not a number"),
        (["resource_name": "epochs", "r_l": "9.5"], "r_l", "not a whole number, and the budget epochs is an int"),
        (["resource_name": "epochs", "r_l": "1e9", "eta": "2"], "r_l", "makes a schedule of"),
        (["resource_name": "epochs", "r_l": "9", "eta": "1"], "eta", "not a whole number in 2...100"),
        (["resource_name": "epochs", "r_l": "9", "eta": "3.5"], "eta", "not a whole number in 2...100"),
        (["resource_name": "epochs", "r_l": "9", "s_max": "2"], "s_max", "not a setting of hyperband; it accepts eta, r_l, random_state, resource_name"),
        (["resource_name": "epochs", "r_l": "9", "random_state": "x"], "random_state", "not a whole number"),
    ] as [([String: String], String, String)])
    func badSettingsAreRefusedByName(_ bad: ([String: String], String, String)) {
        let (settings, name, message) = bad
        let error = #expect(throws: SuggesterError.self) { try Self.make(settings) }
        guard case .invalidSetting(let setting, let text)? = error else {
            Issue.record("\(settings): \(String(describing: error))")
            return
        }
        #expect(setting == name, "\(settings)")
        #expect(text.contains(message), "\(settings): \(text)")
    }

    @Test func theResourceMustBeANumericParameterAndNotTheOnlyOne() {
        let categorical = SearchSpace([Self.space.parameters[0], Parameter(name: "epochs", kind: .categorical(["1", "3", "9"]))])
        let error = #expect(throws: SuggesterError.self) { try Self.make(["resource_name": "epochs", "r_l": "9"], space: categorical) }
        #expect(error == .invalidSetting(name: "resource_name", message: "parameter epochs is categorical; the budget must be an int or a double parameter"))
        let alone = SearchSpace([Self.space.parameters[1]])
        let only = #expect(throws: SuggesterError.self) { try Self.make(["resource_name": "epochs", "r_l": "9"], space: alone) }
        #expect(only?.description.contains("epochs is the only parameter") == true)
    }
}
