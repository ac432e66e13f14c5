import Testing
@testable import KnobAlgorithms

/// Curves for the rules: `values[i]` reported at step i+1, stored in the order given by `orders`.
private func curve(_ id: Int64, _ state: TrialCurve.State, _ values: [Double], orders: [Int64]? = nil) -> TrialCurve {
    TrialCurve(id: id, state: state, points: values.enumerated().map { i, value in
        TrialCurve.Point(step: i + 1, value: value, order: orders?[i] ?? (id * 1000 + Int64(i)))
    })
}

/// The step at which `rule` first stops `trial`, feeding its reports one at a time; nil if it runs to the end.
private func firstStop(_ rule: any StoppingRule, _ trial: TrialCurve, others: [TrialCurve]) -> Int? {
    for count in 1...trial.points.count {
        var prefix = trial
        prefix.points = Array(trial.points.prefix(count))
        if case .stop(let reason) = rule.decide(prefix, others: others) { return reason.step }
    }
    return nil
}

@Suite struct MedianStopTests {
    static func rule(_ settings: [String: String], maximize: Bool = true) throws -> MedianStop {
        try MedianStop(context: StoppingContext(settings: settings, maximize: maximize))
    }

    /// Three completed trials whose running averages to step 4 are 0.55, 0.65 and 0.75 (median 0.65),
    /// and to step 5: 0.58, 0.69, 0.79 (median 0.69).
    static let completedThree: [TrialCurve] = [
        curve(1, .completed, [0.5, 0.6, 0.7, 0.8, 0.85, 0.86, 0.87, 0.88]),
        curve(2, .completed, [0.6, 0.7, 0.8, 0.9, 0.95, 0.96, 0.96, 0.97]),
        curve(3, .completed, [0.4, 0.5, 0.6, 0.7, 0.7, 0.71, 0.72, 0.73]),
    ]

    @Test func withThreeCompletedTrialsStopsOnlyTheTrialsBelowTheMedianFromStartStep() throws {
        let rule = try Self.rule([:])  // Katib's defaults: min_trials_required 3, start_step 4
        #expect(rule.minTrialsRequired == 3 && rule.startStep == 4)
        // Best 0.6 by step 4, below the median 0.65: stops at step 4, not before.
        #expect(firstStop(rule, curve(10, .running, [0.3, 0.4, 0.5, 0.6, 0.9]), others: Self.completedThree) == 4)
        // Best 0.7 at step 4 (above 0.65), then 0.7 at step 5 (above 0.69): runs on; at step 6 the
        // averages are 0.6017, 0.7183 and 0.8183, and its 0.7 is below their median.
        #expect(firstStop(rule, curve(11, .running, [0.3, 0.4, 0.5, 0.7, 0.7, 0.7]), others: Self.completedThree) == 6)
        // Worse than every completed trial for three steps, then better than all of them: never stops.
        #expect(firstStop(rule, curve(12, .running, [0.1, 0.1, 0.1, 0.99, 0.99, 0.99]), others: Self.completedThree) == nil)
        // Running, failed and early-stopped trials are not in the median: with them only, nothing stops.
        let notCompleted = Self.completedThree.map { var c = $0; c.state = .ended; return c } + [curve(20, .running, [0.9, 0.9, 0.9, 0.9])]
        #expect(firstStop(rule, curve(13, .running, [0.1, 0.1, 0.1, 0.1, 0.1]), others: notCompleted) == nil)
    }

    @Test func theReasonGivesTheNumbers() throws {
        let decision = try Self.rule([:]).decide(curve(10, .running, [0.3, 0.4, 0.5, 0.6]), others: Self.completedThree)
        let reason = try #require(decision.reason)
        #expect(reason.value == 0.6 && reason.step == 4 && abs(reason.threshold - 0.65) < 1e-12)
        #expect(reason.rule == .median(trials: 3))
        #expect(reason.message(metric: "accuracy", format: { String(Double(Int(($0 * 100).rounded())) / 100) })
                == "accuracy 0.6 at step 4 is below the median 0.65 of 3 completed trials at that step")
    }

    @Test func withFiveCompletedTrialsTheMedianIsTheMiddleAverage() throws {
        // Averages to step 2: 0.2, 0.4, 0.5, 0.6, 0.8 (median 0.5; the mean would be 0.5 too, so the
        // fifth trial is skewed to tell them apart: its average is 0.95 and the mean 0.53).
        let five = [
            curve(1, .completed, [0.1, 0.3, 0.5]), curve(2, .completed, [0.3, 0.5, 0.6]), curve(3, .completed, [0.4, 0.6, 0.7]),
            curve(4, .completed, [0.5, 0.7, 0.8]), curve(5, .completed, [0.9, 1.0, 1.0]),
        ]
        let rule = try Self.rule(["start_step": "2", "min_trials_required": "5"])
        // 0.52 is above the median 0.5 but below the mean 0.53: the median lets it run.
        #expect(firstStop(rule, curve(10, .running, [0.45, 0.52]), others: five) == nil)
        #expect(firstStop(rule, curve(11, .running, [0.45, 0.49]), others: five) == 2)
        // With one completed trial fewer than required, nothing stops.
        #expect(firstStop(try Self.rule(["start_step": "2", "min_trials_required": "6"]), curve(12, .running, [0.1, 0.1]), others: five) == nil)
        // An even count takes the mean of the two middle averages: without trial 5, (0.4 + 0.5) / 2 = 0.45.
        let four = try Self.rule(["start_step": "2", "min_trials_required": "4"])
        #expect(firstStop(four, curve(13, .running, [0.3, 0.46]), others: Array(five.prefix(4))) == nil)
        #expect(firstStop(four, curve(14, .running, [0.3, 0.44]), others: Array(five.prefix(4))) == 2)
    }

    @Test func startStepDecidesWhenTheRuleFirstLooks() throws {
        let trial = curve(10, .running, [0.3, 0.4, 0.5, 0.6, 0.9])
        // At step 2 the median of averages is 0.65 (0.55, 0.65, 0.75) and 0.4 is below it.
        #expect(firstStop(try Self.rule(["start_step": "2"]), trial, others: Self.completedThree) == 2)
        #expect(firstStop(try Self.rule(["start_step": "1"]), trial, others: Self.completedThree) == 1)
        // From step 5 the best is 0.9, above every median: a late start lets it finish.
        #expect(firstStop(try Self.rule(["start_step": "5"]), trial, others: Self.completedThree) == nil)
    }

    @Test func minimizingStopsTrialsAboveTheMedian() throws {
        let losses = [curve(1, .completed, [1.0, 0.8]), curve(2, .completed, [0.8, 0.6]), curve(3, .completed, [0.6, 0.4])]
        let rule = try Self.rule(["start_step": "2"], maximize: false)
        // Averages to step 2: 0.9, 0.7, 0.5; median 0.7.
        #expect(firstStop(rule, curve(10, .running, [0.9, 0.75]), others: losses) == 2)
        #expect(firstStop(rule, curve(11, .running, [0.9, 0.65]), others: losses) == nil)
        #expect(try #require(rule.decide(curve(10, .running, [0.9, 0.75]), others: losses).reason)
            .message(metric: "loss", format: { "\($0)" }).contains("loss 0.75 at step 2 is above the median 0.7"))
    }

    @Test func settingsAreChecked() {
        #expect(throws: SuggesterError.invalidSetting(name: "start_step", message: "\"0\" is not a whole number in 1...1000000000")) {
            try Self.rule(["start_step": "0"])
        }
        #expect(throws: SuggesterError.self) { try Self.rule(["min_trials_required": "two"]) }
        #expect(throws: SuggesterError.invalidSetting(name: "min_resource", message: "not a setting of medianstop; it accepts min_trials_required, start_step")) {
            try Self.rule(["min_resource": "1"])
        }
        #expect(throws: SuggesterError.self) { try StoppingRuleRegistry.make("median", context: StoppingContext(maximize: true)) }
    }
}

@Suite struct SuccessiveHalvingTests {
    static func rule(_ settings: [String: String], maximize: Bool = true) throws -> SuccessiveHalving {
        try SuccessiveHalving(context: StoppingContext(settings: settings, maximize: maximize))
    }

    @Test func rungsFollowTheSettings() throws {
        let asha = try Self.rule([:])
        #expect((0..<4).map { asha.rungStep($0) } == [1, 3, 9, 27])
        let later = try Self.rule(["min_resource": "2", "reduction_factor": "2", "min_early_stopping_rate": "1"])
        #expect((0..<3).map { later.rungStep($0) } == [4, 8, 16])
    }

    /// Five trials reach the rungs at steps 1 and 3 (min_resource 1, reduction factor 3) in an
    /// order unlike their ids; each is judged against the trials that reached the rung before it.
    @Test func acrossTwoRungsWithTrialsArrivingOutOfOrder() throws {
        let rule = try Self.rule(["min_resource": "1", "reduction_factor": "3"])
        // Arrival order at step 1: trial 5, 3, 4, 1, 2 (orders 1…5); at step 3: 5, 3, 1 (orders 10, 11, 12).
        let trials = [
            curve(5, .running, [0.50, 0.55, 0.60], orders: [1, 6, 10]),
            curve(3, .running, [0.60, 0.62, 0.64], orders: [2, 7, 11]),
            curve(4, .running, [0.40], orders: [3]),
            curve(1, .running, [0.70, 0.70, 0.58], orders: [4, 8, 12]),
            curve(2, .running, [0.65], orders: [5]),
        ]
        func stop(_ id: Int64) -> Int? {
            let trial = trials.first { $0.id == id }!
            return firstStop(rule, trial, others: trials)
        }
        // Rung 0 (step 1): 5 is alone and continues; 3 beats 5 (the best 1 of 2 continues);
        // 4 ranks 3rd of 3 (keep 1) and stops; 1 is best of 4 (keep 1) and continues; 2 (0.65) is 2nd
        // of 5 (keep 1) and stops.
        // Rung 1 (step 3): 5 (0.60 by step 3) is alone and continues; 3 (0.64) beats it; 1's best by
        // step 3 is 0.70, best of 3 (keep 1): continues.
        #expect(stop(5) == nil)
        #expect(stop(3) == nil)
        #expect(stop(4) == 1)
        #expect(stop(1) == nil)
        #expect(stop(2) == 1)
        // Had 5 come to rung 1 after 3, it would have stopped there (0.60 below 0.64).
        var late = trials
        late[0].points[2].order = 13
        #expect(firstStop(rule, late[0], others: late) == 3)
        let reason = try #require(rule.decide(late[0], others: late).reason)
        #expect(reason.rule == .rung(rung: 1, resource: 3, rank: 3, reached: 3, kept: 1))
    }

    @Test func aDecisionDoesNotChangeWhenLaterTrialsArrive() throws {
        let rule = try Self.rule(["min_resource": "2"])
        let first = curve(1, .running, [0.3, 0.4], orders: [1, 2])
        // A far better trial reaches step 2 later: the first had already passed the rung, and still has.
        let later = curve(2, .running, [0.9, 0.9], orders: [3, 4])
        #expect(rule.decide(first, others: [first, later]) == .continue)
        #expect(rule.decide(later, others: [first, later]) == .continue)
        // Before the rung, nothing is decided.
        #expect(rule.decide(curve(3, .running, [0.0], orders: [5]), others: [first, later]) == .continue)
        // Reaching it third, with the worst value: ranked 3 of 3, the best 1 continues.
        #expect(rule.decide(curve(3, .running, [0.0, 0.1], orders: [5, 6]), others: [first, later]).reason?.rule
                == .rung(rung: 0, resource: 2, rank: 3, reached: 3, kept: 1))
    }

    @Test func theTopThirdOfManyTrialsContinues() throws {
        let rule = try Self.rule(["reduction_factor": "3"], maximize: false)
        // Nine trials reach step 1 with losses 0.9, 0.8, …, 0.1 in that order: each is judged among the
        // ones before it, so the 1st (alone), 2nd (best of 2) … continue while they are the best; with
        // ⌊n/3⌋ kept, the k-th arrival continues when it is among the best max(1, ⌊k/3⌋).
        let trials: [TrialCurve] = (0..<9).map { (i: Int) -> TrialCurve in
            let loss: Double = 0.9 - 0.1 * Double(i)
            return curve(Int64(i + 1), .running, [loss], orders: [Int64(i + 1)])
        }
        for trial in trials {
            #expect(rule.decide(trial, others: trials) == .continue, "each newcomer is the best so far")
        }
        let worst = curve(10, .running, [0.95], orders: [10])
        let median = curve(11, .running, [0.45], orders: [11])
        let good = curve(12, .running, [0.25], orders: [12])
        #expect(rule.decide(worst, others: trials) != .continue)
        // 10 trials: the best 3 (0.1, 0.2, 0.3) continue.
        #expect(rule.decide(median, others: trials) != .continue)
        #expect(rule.decide(good, others: trials) == .continue)
    }

    @Test func settingsAreChecked() {
        #expect(throws: SuggesterError.self) { try Self.rule(["reduction_factor": "1"]) }
        #expect(throws: SuggesterError.self) { try Self.rule(["min_resource": "0"]) }
        #expect(throws: SuggesterError.self) { try Self.rule(["min_resource": "1000000000", "reduction_factor": "1000", "min_early_stopping_rate": "60"]) }
        #expect(throws: SuggesterError.self) { try Self.rule(["start_step": "4"]) }
    }
}
