import Foundation
import Testing
@testable import KnobAlgorithms

@Suite struct CMAStateTests {
    func squaredDistance(_ x: [Double], _ y: [Double]) -> Double {
        var sum = 0.0
        for (a, b) in zip(x, y) { sum += (a - b) * (a - b) }
        return sum
    }

    /// Runs `generations` generations of `state` on `f`.
    func optimize(_ state: inout CMAState, generations: Int, seed: UInt64 = 1, _ f: ([Double]) -> Double) {
        var rng = SeededGenerator(seed: seed)
        for _ in 0..<generations {
            let samples = (0..<state.p.lambda).map { _ in state.sample(&rng) }
            state.tell(samples.map { ($0.raw, f($0.evaluated)) })
        }
    }

    @Test func strategyParametersFollowTheTutorial() {
        let p = CMAParameters(n: 10, lambda: 10)
        #expect(p.mu == 5)
        #expect(abs(p.weights.prefix(5).reduce(0, +) - 1) < 1e-12, "positive weights sum to 1")
        #expect(p.weights.prefix(5).allSatisfy { $0 > 0 } && p.weights.suffix(5).allSatisfy { $0 < 0 })
        #expect(zip(p.weights, p.weights.dropFirst()).allSatisfy { $0 > $1 }, "weights decrease with rank")
        #expect(p.c1 + p.cMu <= 1 && p.cSigma < 1 && p.cc <= 1)
        #expect(abs(p.chiN - 3.0847) < 1e-3)
    }

    @Test func theMeanMovesTowardBetterPoints() {
        var state = CMAState(mean: [0.5, 0.5], sigma: 0.2, lambda: 6, cardinality: [0, 0])
        var rng = SeededGenerator(seed: 4)
        let target = [0.9, 0.1]
        func distance(_ x: [Double]) -> Double { squaredDistance(x, target).squareRoot() }
        let before = distance(state.mean)
        let samples = (0..<6).map { _ in state.sample(&rng).raw }
        state.tell(samples.map { ($0, distance($0)) })
        #expect(distance(state.mean) < before)
        // The new mean is the weighted mean of the best half.
        let ranked = samples.sorted { distance($0) < distance($1) }
        let expected = (0..<2).map { j in zip(state.p.weights.prefix(3), ranked.prefix(3)).map { $0 * $1[j] }.reduce(0, +) }
        #expect(zip(state.mean, expected).allSatisfy { abs($0 - $1) < 1e-12 })
    }

    @Test func sigmaShrinksOnASphereAndTheOptimumIsFound() {
        var state = CMAState(mean: [0.5, 0.5, 0.5], sigma: 1.0 / 6, lambda: 7, cardinality: [0, 0, 0])
        let optimum = [0.3, 0.6, 0.45]
        optimize(&state, generations: 120) { x in squaredDistance(x, optimum) }
        #expect(state.sigma < 1e-3 / 6, "σ = \(state.sigma)")
        #expect(zip(state.mean, optimum).allSatisfy { abs($0 - $1) < 1e-4 }, "mean \(state.mean)")
    }

    @Test func theCovarianceStaysSymmetricPositiveDefiniteAndLearnsTheShape() {
        var state = CMAState(mean: [0.5, 0.5, 0.5, 0.5], sigma: 0.2, lambda: 8, cardinality: [0, 0, 0, 0])
        // An ill-conditioned ellipsoid: the first axis 100 times steeper.
        optimize(&state, generations: 150) { x in
            let steep: Double = 1e4 * (x[0] - 0.5) * (x[0] - 0.5)
            return steep + squaredDistance(Array(x.dropFirst()), [0.5, 0.5, 0.5])
        }
        let n = 4
        for a in 0..<n { for b in 0..<n { #expect(state.C[a * n + b] == state.C[b * n + a]) } }
        #expect(state.D.allSatisfy { $0 > 0 })
        // B·D²·Bᵀ reproduces C.
        for a in 0..<n {
            for b in 0..<n {
                let rebuilt = (0..<n).map { state.B[a * n + $0] * state.D[$0] * state.D[$0] * state.B[b * n + $0] }.reduce(0, +)
                #expect(abs(rebuilt - state.C[a * n + b]) < 1e-9 * max(1, abs(state.C[a * n + b])))
            }
        }
        // The steep axis gets the smallest variance.
        #expect(state.C[0] < state.C[5] / 10 && state.C[0] < state.C[10] / 10)
    }

    @Test func marginKeepsEveryIntegerCoordinateAbleToMove() {
        // Integer coordinates whose optimum is an end value (0) and an inner value (2 of 5); the
        // continuous coordinate converges, which without margin would freeze the integers too.
        var state = CMAState(mean: [0.5, 0.5, 0.5], sigma: 1.0 / 6, lambda: 7, cardinality: [5, 5, 0])
        optimize(&state, generations: 200) { x in
            let i0: Double = (x[0] * 5).rounded(.down), i1: Double = (x[1] * 5).rounded(.down)
            let continuous: Double = 100 * (x[2] - 0.7) * (x[2] - 0.7)
            return i0 + abs(i1 - 2) + continuous
        }
        #expect(state.sigma < 1e-3, "the continuous coordinate converged")
        let alpha = state.margin
        let p0 = state.escapeProbability(0), p1 = state.escapeProbability(1)
        #expect(Int(state.mean[0] * 5) == 0 && Int(state.mean[1] * 5) == 2, "means at \(state.mean)")
        #expect(p0.up >= alpha * 0.99, "the end value can still move up: \(p0.up) < \(alpha)")
        #expect(p1.low >= alpha / 2 * 0.99 && p1.up >= alpha / 2 * 0.99, "the inner value can still move: \(p1)")

        var noMargin = CMAState(mean: [0.5, 0.5], sigma: 1.0 / 6, lambda: 6, cardinality: [0, 0])
        optimize(&noMargin, generations: 200) { x in
            let continuous: Double = 100 * (x[1] - 0.7) * (x[1] - 0.7)
            return (x[0] * 5).rounded(.down) + continuous
        }
        let frozen = 1 - Normal.cdf((0.2 - noMargin.mean[0]) / (noMargin.sigma * noMargin.C[0].squareRoot()))
        #expect(frozen < alpha / 100, "without margin the coordinate freezes (\(frozen)), so the test can tell the difference")
    }
}

@Suite struct CMAESSuggesterTests {
    static let branin = SearchSpace([
        Parameter(name: "x0", kind: .double(min: -5, max: 10, step: nil, scale: .linear)),
        Parameter(name: "x1", kind: .double(min: 0, max: 15, step: nil, scale: .linear)),
    ])

    static func braninValue(_ a: Assignment) -> Double {
        let x = a["x0"]!.numericValue!, y = a["x1"]!.numericValue!
        let b = 5.1 / (4 * Double.pi * Double.pi), c = 5 / Double.pi, t = 1 / (8 * Double.pi)
        let inner: Double = y - b * x * x + c * x - 6
        return inner * inner + 10 * (1 - t) * cos(x) + 10
    }

    /// Runs `trials` trials, `parallel` at a time, completing the oldest pending trial each step.
    static func drive(_ suggester: CMAESSuggester, trials: Int, parallel: Int, fail: (Int) -> Bool = { _ in false },
                      _ f: (Assignment) -> Double) throws -> History {
        var history = History()
        while history.trials.count < trials || !history.pending.isEmpty {
            let pending = history.pending.count
            if pending < parallel, history.trials.count < trials {
                let next = try suggester.suggest(count: min(parallel - pending, trials - history.trials.count), history: history)
                history.trials += next.map { .init(assignment: $0.assignment, outcome: .pending, metadata: $0.metadata) }
                if !next.isEmpty { continue }
            }
            guard let oldest = history.trials.firstIndex(where: { $0.outcome == .pending }) else { break }
            history.trials[oldest].outcome = fail(oldest) ? .failed : .completed(f(history.trials[oldest].assignment))
        }
        return history
    }

    @Test func findsBraninsOptimumWithParallelTrialsAndFailures() throws {
        let suggester = try CMAESSuggester(context: SuggesterContext(space: Self.branin, seed: 7))
        let history = try Self.drive(suggester, trials: 150, parallel: 3, fail: { $0 % 11 == 5 }, Self.braninValue)
        let best = history.completed.map(\.value).min()!
        #expect(best - 0.397887 < 0.05, "best \(best)")
        // Generations are filled in order, each index once.
        let tags = history.trials.map { "\($0.metadata["cmaes.generation"]!)/\($0.metadata["cmaes.index"]!)" }
        #expect(Set(tags).count == tags.count)
    }

    @Test func aRestartedProcessContinuesTheSameSearch() throws {
        let context = SuggesterContext(space: Self.branin, settings: ["restart_strategy": "bipop"], seed: 3)
        let history = try Self.drive(try CMAESSuggester(context: context), trials: 40, parallel: 2, Self.braninValue)
        // Mid-generation: two members handed out and still pending.
        var midGeneration = history
        midGeneration.trials += try CMAESSuggester(context: context).suggest(count: 2, history: history)
            .map { .init(assignment: $0.assignment, outcome: .pending, metadata: $0.metadata) }
        // A new instance (as after a restart) sees the same state and proposes the same next points,
        // also when the history went through text (as the store keeps it).
        let fresh = try CMAESSuggester(context: context)
        let reloaded = History(midGeneration.trials.map { trial in
            let assignment = Self.branin.decode(Self.branin.encode(trial.assignment))
            return .init(assignment: assignment, outcome: trial.outcome, metadata: trial.metadata.mapValues { String($0) })
        })
        let a = try CMAESSuggester(context: context).suggest(count: 3, history: midGeneration)
        let b = try fresh.suggest(count: 3, history: reloaded)
        #expect(a == b)
        #expect(a.allSatisfy { $0.metadata["cmaes.generation"] == midGeneration.trials.last!.metadata["cmaes.generation"] })
    }

    @Test func waitsForTheGenerationToCompleteInsteadOfGuessing() throws {
        let suggester = try CMAESSuggester(context: SuggesterContext(space: Self.branin, settings: ["popsize": "4"], seed: 1))
        let first = try suggester.suggest(count: 10, history: History())
        #expect(first.count == 4, "at most one generation at a time")
        let history = History(first.map { .init(assignment: $0.assignment, outcome: .pending, metadata: $0.metadata) })
        #expect(try suggester.suggest(count: 2, history: history).isEmpty)
    }

    @Test func aGenerationThatAllFailedLeavesTheDistributionAsItWas() throws {
        let suggester = try CMAESSuggester(context: SuggesterContext(space: Self.branin, settings: ["popsize": "4"], seed: 1))
        let first = try suggester.suggest(count: 4, history: History())
        let history = History(first.map { .init(assignment: $0.assignment, outcome: .failed, metadata: $0.metadata) })
        let replay = suggester.replay(history)
        #expect(replay.generation == 1 && replay.run.state.mean == [0.5, 0.5] && replay.run.state.sigma == 1.0 / 6)
    }

    @Test func ipopRestartsWithTwiceThePopulationWhenARunStalls() throws {
        let suggester = try CMAESSuggester(context: SuggesterContext(space: Self.branin, settings: ["popsize": "4"], seed: 1))
        // A flat function stops a run at once (flat fitness).
        let history = try Self.drive(suggester, trials: 12, parallel: 4) { _ in 1 }
        let replay = suggester.replay(history)
        #expect(replay.run.number == 2 && replay.run.state.p.lambda == 16)
        let none = try CMAESSuggester(context: SuggesterContext(space: Self.branin, settings: ["popsize": "4", "restart_strategy": "none"], seed: 1))
        #expect(none.replay(try Self.drive(none, trials: 12, parallel: 4) { _ in 1 }).run.number == 0)
    }

    @Test func settingsAreChecked() {
        for (name, value) in [("sigma", "0"), ("sigma", "2"), ("popsize", "1"), ("restart_strategy", "lpop")] {
            #expect(throws: SuggesterError.self, "\(name)=\(value)") {
                try CMAESSuggester(context: SuggesterContext(space: Self.branin, settings: [name: value], seed: 1))
            }
        }
    }

    @Test func aSingleParameterSpaceWorks() throws {
        let space = SearchSpace([Parameter(name: "x", kind: .double(min: -2, max: 2, step: nil, scale: .linear))])
        let suggester = try CMAESSuggester(context: SuggesterContext(space: space, seed: 5))
        let history = try Self.drive(suggester, trials: 60, parallel: 1) { (a: Assignment) -> Double in
            let x = a["x"]!.numericValue!
            return (x - 1) * (x - 1)
        }
        #expect(history.completed.map(\.value).min()! < 1e-4)
    }
}
