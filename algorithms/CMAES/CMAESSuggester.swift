#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Katib's `cmaes`: CMA-ES on the unit-cube encoding of the search space, with margin for
/// discrete coordinates and IPOP or BIPOP restarts.
///
/// Settings: `random_state`; `sigma`, the initial step size as a fraction of each parameter's
/// range (default 1/6); `popsize` (default 4 + ⌊3 ln n⌋); `restart_strategy` none | ipop | bipop
/// (default ipop).
///
/// Every suggestion carries its generation, its index in the generation and the raw sample in
/// its metadata. Each call rebuilds the state by replaying the completed generations of the
/// history, so a restarted process continues the same search. A generation is complete when all
/// λ of its members have ended; a failed member counts as worse than every successful one, and
/// a generation in which all failed leaves the distribution as it was. While a generation waits
/// for its last results, `suggest` returns nothing new.
///
/// Integer, stepped, discrete and categorical parameters are discrete coordinates (one per
/// parameter, the value's index on a grid of equal cells) kept able to move by the margin of
/// Hamano et al. (2022). For categoricals this imposes an order on the choices, which CMA-ES
/// exploits only as far as neighbouring choices behave alike.
public struct CMAESSuggester: Suggester {
    public enum RestartStrategy: String, Sendable, CaseIterable {
        case none, ipop, bipop
    }

    public let space: SearchSpace
    let seed: UInt64
    let sigma0: Double
    let lambda0: Int
    let restartStrategy: RestartStrategy
    let cardinality: [Int]

    static let generationKey = "cmaes.generation"
    static let indexKey = "cmaes.index"
    static let sampleKey = "cmaes.x"
    static let runKey = "cmaes.run"

    public init(context: SuggesterContext) throws {
        let reader = SettingsReader(context.settings)
        try reader.rejectUnknown(["random_state", "sigma", "popsize", "restart_strategy"], algorithm: "cmaes")
        space = context.space
        seed = try reader.seed() ?? context.seed
        let n = max(1, context.space.dimension)
        lambda0 = try reader.int("popsize", in: 2...10_000) ?? 4 + Int((3 * log(Double(n))).rounded(.down))
        if let text = context.settings["sigma"] {
            guard let value = Double(text.trimmingSpaces), value > 0, value <= 1 else {
                throw SuggesterError.invalidSetting(name: "sigma", message: "\"\(text)\" is not a number in (0, 1] (a fraction of each parameter's range)")
            }
            sigma0 = value
        } else {
            sigma0 = 1.0 / 6
        }
        if let text = context.settings["restart_strategy"] {
            guard let strategy = RestartStrategy(rawValue: String(text.trimmingSpaces)) else {
                throw SuggesterError.invalidSetting(name: "restart_strategy", message: "\"\(text)\" is not one of none, ipop, bipop")
            }
            restartStrategy = strategy
        } else {
            restartStrategy = .ipop
        }
        cardinality = context.space.parameters.map { ($0.cardinality ?? 0) >= 2 ? $0.cardinality! : 0 }
    }

    // MARK: Suggest

    public func suggest(count: Int, history: History) throws -> [Suggestion] {
        var used = Set(history.trials.map { space.key($0.assignment) })
        if let total = space.cardinality, used.count >= total { throw SuggesterError.exhausted }
        let replayed = replay(history)
        let generation = replayed.generation
        let state = replayed.run.state
        var result: [Suggestion] = []
        for index in 0..<state.p.lambda where replayed.issued[index] == nil && result.count < count {
            var rng = SeededGenerator(seed: seed, stream: Self.stream(generation: generation, index: index))
            var sample = state.sample(&rng)
            var assignment = space.decode(sample.evaluated)
            // In a discrete space, prefer points not tried yet (a few redraws, then accept).
            var tries = 0
            while used.contains(space.key(assignment)), tries < 20 {
                sample = state.sample(&rng)
                assignment = space.decode(sample.evaluated)
                tries += 1
            }
            used.insert(space.key(assignment))
            result.append(Suggestion(assignment: assignment, metadata: [
                Self.generationKey: String(generation),
                Self.indexKey: String(index),
                Self.runKey: String(replayed.run.number),
                Self.sampleKey: sample.raw.map { "\($0)" }.joined(separator: ","),
            ]))
        }
        return result
    }

    static func stream(generation: Int, index: Int) -> Int {
        generation &* 1_000_003 &+ index
    }

    // MARK: Replay

    /// One CMA-ES run between restarts.
    struct Run {
        var state: CMAState
        var number: Int
        var isLarge: Bool
    }

    struct Replay {
        var run: Run
        /// The generation being filled.
        var generation: Int
        /// Its members handed out so far, by index.
        var issued: [Int: History.Trial]
        /// Generations completed and told.
        var completedGenerations: Int
    }

    /// Rebuilds the current state from the history: every complete generation is told, in order.
    func replay(_ history: History) -> Replay {
        var byGeneration: [Int: [Int: History.Trial]] = [:]
        for trial in history.trials {
            guard let g = trial.metadata[Self.generationKey].flatMap(Int.init),
                  let i = trial.metadata[Self.indexKey].flatMap(Int.init) else { continue }
            byGeneration[g, default: [:]][i] = trial
        }
        var run = Run(state: CMAState(mean: Array(repeating: 0.5, count: space.dimension), sigma: sigma0, lambda: lambda0,
                                      cardinality: cardinality), number: 0, isLarge: true)
        var budget = (large: 0, small: 0)
        var largeRestarts = 0
        var generation = 0
        while true {
            let members = byGeneration[generation] ?? [:]
            let lambda = run.state.p.lambda
            let solutions: [(x: [Double], f: Double)?] = (0..<lambda).map { index in
                guard let trial = members[index] else { return nil }
                switch trial.outcome {
                case .pending: return nil
                case .completed(let value): return parseSample(trial).map { ($0, value.isNaN ? .infinity : value) }
                case .failed: return parseSample(trial).map { ($0, .infinity) }
                }
            }
            guard solutions.allSatisfy({ $0 != nil }) else {
                return Replay(run: run, generation: generation, issued: members, completedGenerations: generation)
            }
            let told = solutions.map { $0! }
            if told.contains(where: { $0.f.isFinite }) { run.state.tell(told) }
            if run.isLarge { budget.large += lambda } else { budget.small += lambda }
            generation += 1
            if restartStrategy != .none, run.state.stopReason != nil {
                run = restart(after: run, budget: budget, largeRestarts: &largeRestarts)
            }
        }
    }

    private func parseSample(_ trial: History.Trial) -> [Double]? {
        guard let text = trial.metadata[Self.sampleKey] else { return nil }
        let values = text.split(separator: ",").compactMap { Double($0) }
        return values.count == space.dimension ? values : nil
    }

    /// The next run: IPOP doubles the population each time; BIPOP alternates between that and
    /// small populations with smaller steps, spending about equal evaluations on each (Hansen 2009).
    private func restart(after run: Run, budget: (large: Int, small: Int), largeRestarts: inout Int) -> Run {
        let number = run.number + 1
        var rng = SeededGenerator(seed: seed ^ 0x5EED_CAFE, stream: number)
        let mean = (0..<space.dimension).map { _ in rng.unit() }
        var lambda = lambda0
        var sigma = sigma0
        var isLarge = true
        switch restartStrategy {
        case .none:
            return run
        case .ipop:
            largeRestarts += 1
            lambda = lambda0 << min(largeRestarts, 10)
        case .bipop:
            if budget.small < budget.large {
                let u = rng.unit()
                let largeLambda = Double(lambda0 << min(largeRestarts, 10))
                lambda = max(2, Int((Double(lambda0) * pow(0.5 * largeLambda / Double(lambda0), u * u)).rounded(.down)))
                sigma = sigma0 * pow(10, -2 * u)
                isLarge = false
            } else {
                largeRestarts += 1
                lambda = lambda0 << min(largeRestarts, 10)
            }
        }
        return Run(state: CMAState(mean: mean, sigma: sigma, lambda: lambda, cardinality: cardinality), number: number, isLarge: isLarge)
    }
}
