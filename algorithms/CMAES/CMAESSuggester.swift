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
/// history, so a restarted process continues the same search. Checkpoints of the replay (in
/// memory, and in the context's `stateStore` when it has one) spare replaying what an earlier
/// call did; one is used only when the history starts with the generations it was built from.
/// A generation is complete when all λ of its members have ended; a failed member counts as
/// worse than every successful one, and a generation in which all failed leaves the distribution
/// as it was. While a generation waits for its last results, `suggest` returns nothing new.
///
/// Integer, stepped and discrete parameters are discrete coordinates (one per parameter, the
/// value's index on a grid of equal cells) kept able to move by a margin. Without categoricals,
/// the run is CMA-ES with the margin of Hamano et al. (2022) (`CMAState`). With categoricals it is
/// CatCMA with margin (Hamano et al. 2025, `CatCMAState`): the categoricals get categorical
/// distributions of their own, learnt from the same ranking, with no order on the choices.
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
    /// What each coordinate is; `nil` when the space has no categorical (plain CMA-ES).
    let mixedCoordinates: [CMACoordinate]?
    /// Where replay checkpoints are kept across processes, and what one kept there must have
    /// been written for.
    let stateStore: (any SuggesterStateStore)?
    let checkpointIdentity: String?

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
        restartStrategy = try reader.choice("restart_strategy") ?? .ipop
        try context.space.requireUniform(algorithm: "cmaes")
        cardinality = context.space.parameters.map { ($0.cardinality ?? 0) >= 2 ? $0.cardinality! : 0 }
        let coordinates = zip(context.space.parameters, cardinality).map { parameter, k -> CMACoordinate in
            if case .categorical = parameter.kind, k >= 2 { return .categorical(k) }
            return k >= 2 ? .discrete(k) : .continuous
        }
        mixedCoordinates = coordinates.contains { if case .categorical = $0 { true } else { false } } ? coordinates : nil
        stateStore = context.stateStore
        checkpointIdentity = context.stateStore == nil ? nil
            : Self.checkpointIdentity(space: space, seed: seed, sigma0: sigma0, lambda0: lambda0, restart: restartStrategy)
    }

    /// A new run's distribution: `point` is a point of the unit cube (its categorical coordinates
    /// are ignored: every choice starts equally likely).
    func initialState(at point: [Double], sigma: Double, lambda: Int) -> any CMASearchState {
        guard let coordinates = mixedCoordinates else {
            return CMAState(mean: point, sigma: sigma, lambda: lambda, cardinality: cardinality)
        }
        let mean = zip(coordinates, point).compactMap { coordinate, u -> Double? in
            if case .categorical = coordinate { return nil }
            return u
        }
        return CatCMAState(coordinates: coordinates, mean: mean, sigma: sigma, lambda: lambda)
    }

    // MARK: Suggest

    public func suggest(count: Int, history: History) throws -> [Suggestion] {
        // Repeats are only possible when every parameter is discrete.
        let finite = space.cardinality != nil
        var used = finite ? Set(history.trials.map { space.key($0.assignment) }) : []
        if let total = space.cardinality, used.count >= total { throw SuggesterError.exhausted }
        let replayed = replay(history)
        let generation = replayed.generation
        let state = replayed.run.state
        var result: [Suggestion] = []
        for index in 0..<state.p.lambda where replayed.issued[index] == nil && result.count < count {
            var rng = SeededGenerator(seed: seed, stream: Self.stream(generation: generation, index: index))
            var sample = state.sample(&rng, member: index, shared: SeededGenerator(seed: seed ^ 0xCA7E_6041_D15C_0001, stream: generation))
            var assignment = space.decode(sample.evaluated)
            // In a discrete space, prefer points not tried yet (a few redraws, then accept). Under
            // CatCMA a choice's probability can be as low as its margin, so it redraws longer.
            var tries = 0
            let redraws = mixedCoordinates == nil ? 20 : 200
            while finite, used.contains(space.key(assignment)), tries < redraws {
                sample = state.sample(&rng)
                assignment = space.decode(sample.evaluated)
                tries += 1
            }
            if finite { used.insert(space.key(assignment)) }
            result.append(Suggestion(assignment: assignment, metadata: [
                Self.generationKey: String(generation),
                Self.indexKey: String(index),
                Self.runKey: String(replayed.run.number),
                Self.sampleKey: sample.raw.map { "\($0)" }.joined(separator: ","),
            ]))
        }
        return result
    }

    /// Forgets every replay checkpoint of this process (the next suggestion replays its whole
    /// history, as the first one after a restart does).
    public static func clearReplayCheckpoints() {
        CMAReplayCache.shared.removeAll()
    }

    static func stream(generation: Int, index: Int) -> Int {
        generation &* 1_000_003 &+ index
    }

    // MARK: Replay

    /// One CMA-ES run between restarts.
    struct Run {
        var state: any CMASearchState
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
        /// How many of them a checkpoint gave, rather than telling them again.
        var resumed: Int
    }

    /// Rebuilds the current state from the history: every complete generation is told, in order.
    /// The result depends on the history alone; a checkpoint kept from an earlier call (in this
    /// process, or in the state store) only saves replaying the generations it covers, when the
    /// history starts with them.
    func replay(_ history: History) -> Replay {
        let index = GenerationIndex(history)
        let key = CMAReplayCache.Key(space: space, seed: seed, sigma0: sigma0, lambda0: lambda0, restart: restartStrategy.rawValue)
        var checkpoint: Checkpoint
        var stored = false
        if let cached = CMAReplayCache.shared.checkpoint(for: key), self.history(index, startsWith: cached) {
            checkpoint = cached
        } else if let kept = stateStore?.read(Self.checkpointName).flatMap(decodeCheckpoint), self.history(index, startsWith: kept) {
            checkpoint = kept
            stored = true
        } else {
            checkpoint = Checkpoint(
                run: Run(state: initialState(at: Array(repeating: 0.5, count: space.dimension), sigma: sigma0, lambda: lambda0),
                         number: 0, isLarge: true),
                generation: 0, budget: (0, 0), largeRestarts: 0)
        }
        let resumedAt = checkpoint.generation
        while true {
            let lambda = checkpoint.run.state.p.lambda
            var told: [(x: [Double], f: Double)] = []
            var signature: [(text: String, value: Double)] = []
            for member in index.members(of: checkpoint.generation, lambda: lambda) {
                guard let member, let text = member.sample, let f = member.value, let x = parseSample(text) else { break }
                told.append((x, f))
                signature.append((text, f))
            }
            guard told.count == lambda else {
                if checkpoint.generation > resumedAt || stored { CMAReplayCache.shared.store(checkpoint, for: key) }
                if checkpoint.generation > resumedAt, let stateStore { stateStore.write(Self.checkpointName, encode(checkpoint)) }
                return Replay(run: checkpoint.run, generation: checkpoint.generation,
                              issued: index.trials(of: checkpoint.generation, in: history), completedGenerations: checkpoint.generation,
                              resumed: resumedAt)
            }
            if told.contains(where: { $0.f.isFinite }) { checkpoint.run.state.tell(told) }
            if checkpoint.run.isLarge { checkpoint.budget.large += lambda } else { checkpoint.budget.small += lambda }
            checkpoint.members.append(generation: signature)
            checkpoint.generation += 1
            if restartStrategy != .none, checkpoint.run.state.stopReason != nil {
                checkpoint.run = restart(after: checkpoint.run, budget: checkpoint.budget, largeRestarts: &checkpoint.largeRestarts)
            }
        }
    }

    private func parseSample(_ text: String) -> [Double]? {
        let values = text.utf8.split(separator: UInt8(ascii: ",")).compactMap { Double(Substring($0)) }
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
        return Run(state: initialState(at: mean, sigma: sigma, lambda: lambda), number: number, isLarge: isLarge)
    }
}
