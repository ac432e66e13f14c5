/// Katib's `multivariate-tpe`: the TPE of `tpe` with one joint density per group instead of one per
/// parameter, as Optuna's TPESampler with `multivariate=True` (its default since Optuna 4) computes it.
///
/// The loop is `tpe`'s: random search until `n_startup_trials` trials have completed (default 10),
/// then the split into good and bad groups, pending trials and the earlier suggestions of the same
/// call in the bad group (the constant liar), repeats of a finite space's used points replaced. The
/// model differs: each trial of a group is one kernel over all parameters at once, the product of
/// its per-parameter kernels (`MultivariateParzenEstimator`), so a draw keeps the parameters of one
/// good trial together and the ranking by log l(x) − log g(x) sees how parameters combine.
/// Trials that lack a usable value for some parameter are left out of the model.
///
/// Settings: `n_startup_trials` (default 10), `n_ei_candidates` (default 24), `random_state`.
public struct MultivariateTPESuggester: Suggester {
    /// The shared TPE core: settings, split, batch loop, domains.
    let core: TPESuggester
    /// Indices of the parameters the model covers (those with more than one value).
    let modelled: [Int]

    static let settingNames: Set<String> = ["n_startup_trials", "n_ei_candidates", "random_state"]

    public init(context: SuggesterContext) throws {
        let core = try TPESuggester(context: context, algorithm: "multivariate-tpe", settingNames: Self.settingNames)
        self.core = core
        modelled = core.domains.indices.filter { if case .fixed = core.domains[$0] { false } else { true } }
    }

    public func suggest(count: Int, history: History) throws -> [Suggestion] {
        try core.suggest(count: count, history: history) { good, bad, rng in propose(good: good, bad: bad, &rng) }
    }

    /// The best of `n_ei_candidates` joint draws from the good density l, by log l(x) − log g(x).
    func propose(good: [Assignment], bad: [Assignment], _ rng: inout SeededGenerator) -> Assignment {
        let l = estimator(over: good), g = estimator(over: bad)
        var best: [Double] = [], bestScore = -Double.infinity
        for _ in 0..<core.candidates {
            let x = l.sample(&rng)
            let score = l.logDensity(x) - g.logDensity(x)
            if best.isEmpty || score > bestScore { (best, bestScore) = (x, score) }
        }
        return assignment(best)
    }

    /// The joint Parzen estimator over a group's trials that have a usable value for every modelled parameter.
    func estimator(over group: [Assignment]) -> MultivariateParzenEstimator {
        let points = group.compactMap(point)
        return MultivariateParzenEstimator(points: points, domains: modelled.map { core.domains[$0] }, priorWeight: core.priorWeight)
    }

    /// An assignment's coordinates over the modelled parameters, or nil when one has no usable value.
    func point(_ assignment: Assignment) -> [Double]? {
        var x: [Double] = []
        x.reserveCapacity(modelled.count)
        for p in modelled {
            let value = assignment[core.space.parameters[p].name]
            switch core.domains[p] {
            case .numeric(let domain):
                guard let v = value?.numericValue, let t = domain.coordinate(of: v) else { return nil }
                x.append(t)
            case .categorical(let indexOf, _):
                guard case .string(let s)? = value, let c = indexOf[s] else { return nil }
                x.append(Double(c))
            case .fixed:
                break
            }
        }
        return x
    }

    /// The assignment at coordinates x over the modelled parameters, fixed parameters at their value.
    func assignment(_ x: [Double]) -> Assignment {
        var values: [String: ParameterValue] = [:]
        for (parameter, domain) in zip(core.space.parameters, core.domains) {
            if case .fixed(let value) = domain { values[parameter.name] = value }
        }
        for (d, p) in modelled.enumerated() {
            let parameter = core.space.parameters[p]
            switch core.domains[p] {
            case .numeric(let domain):
                values[parameter.name] = domain.isGrid ? domain.value(atGridIndex: domain.gridIndex(atCoordinate: x[d])) : domain.value(atCoordinate: x[d])
            case .categorical:
                values[parameter.name] = parameter.value(at: Int(x[d]))
            case .fixed:
                break
            }
        }
        return Assignment(values)
    }
}
