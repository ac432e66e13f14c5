/// Katib's `multivariate-tpe`: the TPE with one joint density per group, as Optuna's TPESampler with
/// `multivariate=True` (its default since Optuna 4) builds it, searched as knob's `tpe` searches it.
///
/// The loop is `tpe`'s: random search until `n_startup_trials` trials have completed (default 10),
/// then the split into good and bad groups, pending trials and the earlier suggestions of the same
/// call in the bad group (the constant liar), repeats of a finite space's used points replaced. Each
/// trial of a group is one kernel over all parameters at once, the product of its per-parameter
/// kernels (`MultivariateParzenEstimator`), so a draw keeps the parameters of one good trial
/// together and the ranking by log l(x) − log g(x) sees how parameters combine. Trials that lack a
/// usable value for some parameter are left out of the model. Good trials weigh by improvement and
/// the best candidate's kernel is searched again, as in `tpe` (`TPEModel.standard`); with its
/// defaults `tpe` runs this same model, and differs only in the settings it takes.
///
/// Settings: `n_startup_trials` (default 10), `n_ei_candidates` (default 24), `random_state`.
public struct MultivariateTPESuggester: Suggester {
    /// The shared TPE core: settings, split, batch loop, domains, and the joint model.
    private(set) var core: TPESuggester

    static let settingNames: Set<String> = ["n_startup_trials", "n_ei_candidates", "random_state"]

    public init(context: SuggesterContext) throws {
        core = try TPESuggester(context: context, algorithm: "multivariate-tpe", settingNames: Self.settingNames)
    }

    /// Indices of the parameters the model covers (those with more than one value).
    var modelled: [Int] { core.modelled }

    public func suggest(count: Int, history: History) throws -> [Suggestion] {
        try core.suggest(count: count, history: history) { good, goodWeights, bad, rng in
            core.multivariatePropose(good: good, goodWeights: goodWeights, bad: bad, &rng)
        }
    }

    /// The joint Parzen estimator over a group's trials that have a usable value for every
    /// modelled parameter, weighted by count as the model says (Optuna's recency with `.optuna`).
    func estimator(over group: [Assignment]) -> MultivariateParzenEstimator {
        core.multivariateEstimator(over: group, weights: nil)
    }

    /// The same suggester with another model.
    func with(model: TPEModel) -> MultivariateTPESuggester {
        var copy = self
        copy.core = core.with(model: model)
        return copy
    }

    func point(_ assignment: Assignment) -> [Double]? { core.point(assignment) }

    func assignment(_ x: [Double]) -> Assignment { core.multivariateAssignment(x) }
}

extension TPESuggester {
    /// The best of `n_ei_candidates` joint draws from the good density l, by log l(x) − log g(x),
    /// then of the refinement draws from the kernel that gave it.
    func multivariatePropose(good: [Assignment], goodWeights: [Double], bad: [Assignment], _ rng: inout SeededGenerator) -> Assignment {
        let l = multivariateEstimator(over: good, weights: goodWeights), g = multivariateEstimator(over: bad, weights: nil)
        var best: [Double] = [], bestScore = -Double.infinity, bestKernel = 0
        for _ in 0..<candidates {
            let k = l.sampleKernel(&rng)
            let x = l.sample(kernel: k, &rng)
            let score = l.logDensity(x) - g.logDensity(x)
            if best.isEmpty || score > bestScore { (best, bestScore, bestKernel) = (x, score, k) }
        }
        for _ in 0..<model.refinementDraws {
            let x = l.sample(kernel: bestKernel, scale: model.refinementScale, &rng)
            let score = l.logDensity(x) - g.logDensity(x)
            if score > bestScore { (best, bestScore) = (x, score) }
        }
        return multivariateAssignment(best)
    }

    /// The joint Parzen estimator over a group's trials that have a usable value for every modelled
    /// parameter; `weights` (one per trial of the group) or the model's weights by count.
    func multivariateEstimator(over group: [Assignment], weights: [Double]?) -> MultivariateParzenEstimator {
        var points: [[Double]] = []
        var kept: [Double] = []
        points.reserveCapacity(group.count)
        for (i, assignment) in group.enumerated() {
            if let x = point(assignment) {
                points.append(x)
                if let weights { kept.append(weights[i]) }
            }
        }
        let w = weights == nil ? model.weights(count: points.count) : kept
        return MultivariateParzenEstimator(points: points, domains: modelled.map { domains[$0] }, priorWeight: model.priorWeight(priorWeight, beside: w),
                                           observationWeights: w)
    }

    /// An assignment's coordinates over the modelled parameters, or nil when one has no usable value.
    func point(_ assignment: Assignment) -> [Double]? {
        var x: [Double] = []
        x.reserveCapacity(modelled.count)
        for p in modelled {
            let value = assignment[space.parameters[p].name]
            switch domains[p] {
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
    func multivariateAssignment(_ x: [Double]) -> Assignment {
        var values: [String: ParameterValue] = [:]
        for (parameter, domain) in zip(space.parameters, domains) {
            if case .fixed(let value) = domain { values[parameter.name] = value }
        }
        for (d, p) in modelled.enumerated() {
            let parameter = space.parameters[p]
            switch domains[p] {
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
