/// How the TPE builds and searches its model, beyond Katib's settings: what `tpe` and
/// `multivariate-tpe` run by default (`standard`), and Optuna's TPESampler (`optuna`), against which
/// the estimators are checked.
struct TPEModel: Sendable, Equatable {
    /// How much each trial of the good group counts.
    enum Weighting: Sendable, Equatable {
        /// Optuna's: the recent 25 fully, older ones ramped down (`ParzenWeights.recency`), in both groups.
        case recency
        /// By improvement (Watanabe 2023, the weights under which the TPE's ranking is expected
        /// improvement): a good trial weighs threshold − y, where the threshold is the best value of
        /// the bad group, and the prior weighs `prior_weight` times their mean; the bad group's
        /// trials weigh alike.
        case improvement
    }

    /// One joint kernel per trial over all parameters (`MultivariateParzenEstimator`), or one
    /// estimator per parameter.
    var multivariate: Bool
    var weighting: Weighting
    /// Draws spent, after the `n_EI_candidates` draws, on the kernel that gave the best of them,
    /// with its bandwidths multiplied by `refinementScale`; the best of all is suggested.
    var refinementDraws: Int
    var refinementScale: Double

    /// knob's TPE.
    static func standard(multivariate: Bool = true) -> TPEModel {
        TPEModel(multivariate: multivariate, weighting: .improvement, refinementDraws: 8, refinementScale: 0.5)
    }

    /// Optuna's TPESampler, with `multivariate` as given.
    static func optuna(multivariate: Bool) -> TPEModel {
        TPEModel(multivariate: multivariate, weighting: .recency, refinementDraws: 0, refinementScale: 1)
    }

    /// Weights of a group of n trials (in trial order) when they are not by improvement.
    func weights(count n: Int) -> [Double] {
        weighting == .recency ? ParzenWeights.recency(count: n) : [Double](repeating: 1, count: n)
    }

    /// The good group's weights, given its values and the threshold (nan when there is no bad trial).
    func goodWeights(values: [Double], threshold: Double) -> [Double] {
        guard weighting == .improvement, threshold.isFinite else { return weights(count: values.count) }
        return values.map { Swift.max(1e-12, threshold - $0) }
    }

    /// The prior's weight beside observation weights w: `priorWeight` times their mean when by
    /// improvement, so that it keeps its share whatever the objective's scale.
    func priorWeight(_ priorWeight: Double, beside w: [Double]) -> Double {
        guard weighting == .improvement, !w.isEmpty else { return priorWeight }
        let mean = w.reduce(0, +) / Double(w.count)
        return mean > 0 && mean.isFinite ? priorWeight * mean : priorWeight
    }
}
