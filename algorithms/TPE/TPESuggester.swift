#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Katib's `tpe`: the Tree-structured Parzen Estimator (Bergstra et al. 2011), with the components
/// that make Optuna's TPESampler strong and those that Watanabe (2023) found to make it stronger.
///
/// Until `n_startup_trials` trials have completed (default 10), suggestions are those of `random`.
/// Then the completed trials are split by objective: the best ⌈0.1·n⌉, at most 25 (or ⌈gamma·n⌉ when
/// `gamma` is set), form the good group, the rest the bad one. Pending trials, and the earlier
/// suggestions of the same call, join the bad group as if they had returned the worst value (a
/// constant liar), so parallel trials spread out. Failed trials join the bad group too, so that the
/// search moves away from where trials fail; they do not count in n. (Optuna leaves failed trials out.)
///
/// Each group is modelled by a Parzen estimator: by default one joint kernel per trial over all
/// parameters (`MultivariateParzenEstimator`, as `multivariate-tpe`), or with `multivariate: false`
/// one estimator per parameter (`ParzenEstimator.swift`). A good trial weighs by how much it improves
/// on the bad group's best value, bad trials alike (`TPEModel.Weighting.improvement`); a prior kernel
/// of weight `prior_weight` (relative to the mean weight); bandwidths from the gaps between
/// neighbours, clipped ("magic clip"). Log-scaled parameters are modelled in log space; ints and
/// steps by Gaussians discretized onto their grid; `discrete` and `categorical` choices by a
/// categorical kernel. `n_EI_candidates` draws from the good density l are ranked by
/// log l(x) − log g(x); 8 more are drawn from the kernel that gave the best, at half its bandwidth,
/// and the best of all is suggested (`TPEModel`).
///
/// In a finite space no assignment of the history is suggested again: a repeat is replaced by a new
/// draw, then by a random unused point, and `exhausted` is thrown once every point has been used.
///
/// Settings: `gamma` (in (0, 1)), `prior_weight` (> 0, default 1), `n_EI_candidates` (default 24;
/// Optuna's spelling `n_ei_candidates` too), `n_startup_trials` (default 10), `random_state`,
/// `multivariate` (`true` or `false`, default true).
public struct TPESuggester: Suggester {
    public let space: SearchSpace
    let seed: UInt64
    /// The fraction of good trials when `gamma` is set; nil for Optuna's schedule.
    let gamma: Double?
    let priorWeight: Double
    let candidates: Int
    let startupTrials: Int
    let domains: [TPEDomain]
    /// Indices of the parameters the joint model covers (those with more than one value).
    let modelled: [Int]
    /// How the groups are modelled and searched.
    private(set) var model: TPEModel

    static let settingNames: Set<String> = ["gamma", "prior_weight", "n_EI_candidates", "n_ei_candidates", "n_startup_trials", "random_state",
                                            "multivariate"]

    /// The values of an on/off setting.
    enum Switch: String, CaseIterable {
        case `true`, `false`
    }

    /// New draws tried when a suggestion repeats a used point of a finite space.
    static let redraws = 4

    public init(context: SuggesterContext) throws {
        try self.init(context: context, algorithm: "tpe", settingNames: Self.settingNames)
    }

    /// The TPE core under another algorithm's name, which accepts only `settingNames` (a subset of
    /// tpe's); the other settings keep their defaults.
    init(context: SuggesterContext, algorithm: String, settingNames: Set<String>) throws {
        let reader = SettingsReader(context.settings)
        try reader.rejectUnknown(settingNames, algorithm: algorithm)
        space = context.space
        seed = try reader.seed() ?? context.seed
        gamma = try Self.number("gamma", in: context.settings, isValid: { $0 > 0 && $0 < 1 }, expected: "a number in (0, 1), the fraction of trials in the good group")
        priorWeight = try Self.number("prior_weight", in: context.settings, isValid: { $0 > 0 }, expected: "a positive number") ?? 1
        if context.settings["n_EI_candidates"] != nil, context.settings["n_ei_candidates"] != nil {
            throw SuggesterError.invalidSetting(name: "n_ei_candidates", message: "set either n_EI_candidates or n_ei_candidates, not both")
        }
        candidates = try reader.int("n_EI_candidates", in: 1...100_000) ?? reader.int("n_ei_candidates", in: 1...100_000) ?? 24
        startupTrials = try reader.int("n_startup_trials", in: 0...1_000_000) ?? 10
        let domains = context.space.parameters.map(TPEDomain.init)
        self.domains = domains
        modelled = domains.indices.filter { if case .fixed = domains[$0] { false } else { true } }
        let multivariate: Switch = try reader.choice("multivariate", ignoringCase: true) ?? .true
        model = .standard(multivariate: multivariate == .true)
    }

    /// The same suggester with another model (Optuna's, to check the estimators against it).
    func with(model: TPEModel) -> TPESuggester {
        var copy = self
        copy.model = model
        return copy
    }

    /// A finite number setting that passes `isValid`, or nil when absent.
    static func number(_ name: String, in settings: [String: String], isValid: (Double) -> Bool, expected: String) throws -> Double? {
        guard let text = settings[name] else { return nil }
        guard let value = Double(text.trimmingSpaces), value.isFinite, isValid(value) else {
            throw SuggesterError.invalidSetting(name: name, message: "\"\(text)\" is not \(expected)")
        }
        return value
    }

    /// Size of the good group among n completed trials.
    func goodCount(completed n: Int) -> Int {
        guard n > 0 else { return 0 }
        let count: Double
        if let gamma {
            count = (gamma * Double(n)).rounded(.up)
        } else {
            count = Swift.min((0.1 * Double(n)).rounded(.up), 25)
        }
        return Swift.min(n, Swift.max(1, Int(count)))
    }

    public func suggest(count: Int, history: History) throws -> [Suggestion] {
        try suggest(count: count, history: history) { good, goodWeights, bad, rng in
            model.multivariate ? multivariatePropose(good: good, goodWeights: goodWeights, bad: bad, &rng)
                : propose(good: good, goodWeights: goodWeights, bad: bad, &rng)
        }
    }

    /// The TPE loop around a model: random search until `n_startup_trials` have completed, then
    /// `propose(good, goodWeights, bad, rng)` once a suggestion (the good trials' weights by the
    /// model), each one added to the bad group (the constant liar), with repeats of a finite space's
    /// used points replaced.
    func suggest(count: Int, history: History,
                 propose: (_ good: [Assignment], _ goodWeights: [Double], _ bad: [Assignment], _ rng: inout SeededGenerator) -> Assignment) throws -> [Suggestion] {
        guard count > 0 else { return [] }
        let groups = split(history)
        if groups.completed < startupTrials {
            return try RandomSuggester(context: SuggesterContext(space: space, seed: seed)).suggest(count: count, history: history)
        }
        var rng = SeededGenerator(seed: seed, stream: history.trials.count)
        let cardinality = space.cardinality
        var used = Set<[String]>()
        if let cardinality {
            used = Set(history.trials.map { space.key($0.assignment) })
            if used.count >= cardinality { throw SuggesterError.exhausted }
        }

        let good = groups.good.map { history.trials[$0].assignment }
        let goodWeights = model.goodWeights(values: groups.good.map { i -> Double in
            if case .completed(let v) = history.trials[i].outcome { v } else { .nan }
        }, threshold: groups.threshold)
        var bad = groups.bad.map { history.trials[$0].assignment }
        var batch = history
        var result: [Suggestion] = []
        while result.count < count {
            var assignment = propose(good, goodWeights, bad, &rng)
            if cardinality != nil {
                var tries = 0
                while used.contains(space.key(assignment)), tries < Self.redraws {
                    assignment = propose(good, goodWeights, bad, &rng)
                    tries += 1
                }
                if used.contains(space.key(assignment)) {
                    // Fall back to a random point no trial has used; none left ends the batch.
                    let random = try? RandomSuggester(context: SuggesterContext(space: space, seed: seed)).suggest(count: 1, history: batch)
                    guard let fallback = random?.first?.assignment else { break }
                    assignment = fallback
                }
                used.insert(space.key(assignment))
            }
            result.append(Suggestion(assignment: assignment))
            bad.append(assignment)
            batch.trials.append(.init(assignment: assignment, outcome: .pending))
        }
        if result.isEmpty { throw SuggesterError.exhausted }
        return result
    }

    /// Trial indices of the good and bad groups, each in trial order, the count of completed trials,
    /// and the best value of the bad group (nan when it has no completed trial).
    func split(_ history: History) -> (good: [Int], bad: [Int], completed: Int, threshold: Double) {
        var completed: [(index: Int, value: Double)] = []
        for (i, trial) in history.trials.enumerated() {
            if case .completed(let value) = trial.outcome, !value.isNaN { completed.append((i, value)) }
        }
        completed.sort { $0.value < $1.value || ($0.value == $1.value && $0.index < $1.index) }
        let goodCount = goodCount(completed: completed.count)
        var isGood = [Bool](repeating: false, count: history.trials.count)
        for entry in completed.prefix(goodCount) { isGood[entry.index] = true }
        var good: [Int] = [], bad: [Int] = []
        for i in history.trials.indices {
            if isGood[i] { good.append(i) } else { bad.append(i) }
        }
        let threshold = goodCount < completed.count ? completed[goodCount].value : .nan
        return (good, bad, completed.count, threshold)
    }

    /// One assignment of the univariate model: each parameter's best of `candidates` draws from its
    /// good density, then of the refinement draws.
    func propose(good: [Assignment], goodWeights: [Double], bad: [Assignment], _ rng: inout SeededGenerator) -> Assignment {
        var values: [String: ParameterValue] = [:]
        for (parameter, domain) in zip(space.parameters, domains) {
            switch domain {
            case .fixed(let value):
                values[parameter.name] = value
            case .numeric(let numeric):
                values[parameter.name] = proposeNumeric(numeric, good: good, goodWeights: goodWeights, bad: bad, &rng)
            case .categorical(let indexOf, let count):
                values[parameter.name] = proposeCategorical(parameter, indexOf: indexOf, count: count, good: good, goodWeights: goodWeights, bad: bad, &rng)
            }
        }
        return Assignment(values)
    }

    /// The Parzen estimator of one numeric parameter over a group (trials without a usable value
    /// skipped), with `weights` (one per trial of the group) or the model's weights by count.
    func mixture(_ domain: NumericDomain, over group: [Assignment], weights: [Double]? = nil) -> TruncatedGaussianMixture {
        var observations: [Double] = []
        var kept: [Double] = []
        observations.reserveCapacity(group.count)
        for (i, assignment) in group.enumerated() {
            if let x = assignment[domain.parameter.name]?.numericValue, let t = domain.coordinate(of: x) {
                observations.append(t)
                if let weights { kept.append(weights[i]) }
            }
        }
        let w = weights == nil ? model.weights(count: observations.count) : kept
        return TruncatedGaussianMixture(observations: observations, observationWeights: w,
                                        priorWeight: model.priorWeight(priorWeight, beside: w), lo: domain.lo, hi: domain.hi, prior: domain.prior)
    }

    func proposeNumeric(_ domain: NumericDomain, good: [Assignment], goodWeights: [Double], bad: [Assignment], _ rng: inout SeededGenerator) -> ParameterValue {
        let l = mixture(domain, over: good, weights: goodWeights), g = mixture(domain, over: bad)
        var bestScore = -Double.infinity
        if domain.isGrid {
            var best = -1
            for _ in 0..<candidates {
                let k = domain.gridIndex(atCoordinate: l.sample(&rng))
                let cell = domain.cell(k)
                let score = l.logMass(from: cell.lower, to: cell.upper) - g.logMass(from: cell.lower, to: cell.upper)
                if best < 0 || score > bestScore { (best, bestScore) = (k, score) }
            }
            return domain.value(atGridIndex: best)
        }
        var best = Double.nan, bestKernel = 0
        for _ in 0..<candidates {
            let k = l.sampleKernel(&rng)
            let t = l.sample(kernel: k, &rng)
            let score = l.logDensity(t) - g.logDensity(t)
            if best.isNaN || score > bestScore { (best, bestScore, bestKernel) = (t, score, k) }
        }
        for _ in 0..<model.refinementDraws {
            let t = l.sample(kernel: bestKernel, scale: model.refinementScale, &rng)
            let score = l.logDensity(t) - g.logDensity(t)
            if score > bestScore { (best, bestScore) = (t, score) }
        }
        return domain.value(atCoordinate: best)
    }

    func proposeCategorical(_ parameter: Parameter, indexOf: [String: Int], count: Int, good: [Assignment], goodWeights: [Double], bad: [Assignment],
                            _ rng: inout SeededGenerator) -> ParameterValue {
        func estimator(_ group: [Assignment], _ weights: [Double]?) -> CategoricalParzenEstimator {
            var observations: [Int] = []
            var kept: [Double] = []
            for (j, assignment) in group.enumerated() {
                if case .string(let s)? = assignment[parameter.name], let i = indexOf[s] {
                    observations.append(i)
                    if let weights { kept.append(weights[j]) }
                }
            }
            let w = weights == nil ? model.weights(count: observations.count) : kept
            return CategoricalParzenEstimator(observations: observations, observationWeights: w,
                                              priorWeight: model.priorWeight(priorWeight, beside: w), choices: count)
        }
        let l = estimator(good, goodWeights), g = estimator(bad, nil)
        var best = -1, bestScore = -Double.infinity
        for _ in 0..<candidates {
            let c = l.sample(&rng)
            let score = l.logProbability(c) - g.logProbability(c)
            if best < 0 || score > bestScore { (best, bestScore) = (c, score) }
        }
        return parameter.value(at: best)
    }
}
