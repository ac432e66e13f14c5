#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Katib's `bayesianoptimization` (alias `gp`): Bayesian optimization with a Gaussian process.
///
/// The first `n_initial_points` trials (default 10) follow a scrambled Sobol design. After that,
/// a Matérn-5/2 ARD process is fitted to the completed trials on the unit-cube encoding (outputs
/// standardized and warped toward normal by a Yeo–Johnson transform, `OutputWarping`, then measured
/// from the worst, so that where the model has no data it expects the worst value seen; categorical
/// parameters at distance 0 or 1, hyperparameters by maximum a posteriori
/// with L-BFGS, warm-started from the previous model suggestion and, once there are a few dozen
/// trials, refitted only every few trials), and each suggestion maximizes log
/// expected improvement (`AcquisitionOptimizer`: Sobol candidates, then local searches that move
/// continuous coordinates by L-BFGS and enumerate small discrete ones). Pending trials (and the
/// earlier suggestions of the same batch) are conditioned on as if they had returned the mean the
/// model predicts there (kriging believer), so parallel trials spread out. Failed trials are left
/// out of the model but never suggested again. Past `max_fit_trials` completed trials, the model
/// sees the best half of that many and an even spread of the rest.
///
/// Settings: `n_initial_points`, `random_state`, `acq_func` (`logei`, or `ucb` with `kappa`),
/// `base_estimator` (`GP` only), `n_candidates` (default 512), `max_fit_trials` (default 500),
/// `output_warping` (`yeo-johnson`, the default, or `standardize`).
public struct GPSuggester: Suggester {
    public let space: SearchSpace
    let seed: UInt64
    let initialPoints: Int
    let candidates: Int
    let maxFitTrials: Int
    let acquisition: Acquisition
    let outputWarping: OutputWarping.Kind
    /// Per coordinate: its encoded values when finite and not too many, and whether it is categorical.
    let grids: [[Double]?]
    let categorical: [Bool]

    enum Acquisition: Sendable {
        case logEI
        case ucb(kappa: Double)
    }

    /// Metadata key of the log-hyperparameters a model suggestion was made with.
    static let hyperparametersKey = "gp.theta"
    /// Metadata key of the number of completed trials those hyperparameters were fitted on.
    static let fittedOnKey = "gp.fitted_on"
    /// Local searches of the acquisition per suggestion (the best completed point among the starts).
    static let localSearches = 4
    /// Quasi-Newton iterations of a warm-started hyperparameter fit: the previous optimum, on one
    /// trial fewer, is close, and the next suggestion continues from where this one stops.
    static let warmFitIterations = 2
    /// Completed trials that may arrive before the hyperparameters are fitted again; in between, the
    /// previous ones are kept and the model is only conditioned on the new data. One more trial moves
    /// the optimum little once there are a few dozen, so the interval grows with the data.
    static func refitInterval(completed: Int) -> Int {
        completed < 30 ? 1 : completed < 60 ? 2 : 4
    }
    /// At most this many trials enter the hyperparameter fit; the model itself uses up to `max_fit_trials`.
    static let hyperparameterFitLimit = 300
    /// A discrete coordinate with more values than this is handled as continuous, then rounded.
    static let gridLimit = 4096

    public init(context: SuggesterContext) throws {
        let reader = SettingsReader(context.settings)
        try reader.rejectUnknown(["n_initial_points", "random_state", "acq_func", "kappa", "base_estimator", "n_candidates", "max_fit_trials", "output_warping"],
                                 algorithm: "bayesianoptimization")
        space = context.space
        seed = try reader.seed() ?? context.seed
        initialPoints = try reader.int("n_initial_points", in: 1...10_000) ?? 10
        candidates = try reader.int("n_candidates", in: 16...100_000) ?? 512
        maxFitTrials = try reader.int("max_fit_trials", in: 20...100_000) ?? 500
        if let estimator = context.settings["base_estimator"], estimator.trimmingSpaces.uppercased() != "GP" {
            throw SuggesterError.invalidSetting(name: "base_estimator", message: "\"\(estimator)\" is not supported; knob's bayesianoptimization uses a Gaussian process (GP)")
        }
        switch context.settings["acq_func"].map({ String($0.trimmingSpaces).lowercased() }) ?? "logei" {
        case "logei", "ei":
            acquisition = .logEI
        case "ucb", "lcb":
            let text = context.settings["kappa"] ?? "1.96"
            guard let kappa = Double(text.trimmingSpaces), kappa >= 0, kappa.isFinite else {
                throw SuggesterError.invalidSetting(name: "kappa", message: "\"\(text)\" is not a non-negative number")
            }
            acquisition = .ucb(kappa: kappa)
        case let other:
            throw SuggesterError.invalidSetting(name: "acq_func", message: "\"\(other)\" is not one of logei, ucb")
        }
        outputWarping = try reader.choice("output_warping", ignoringCase: true) ?? .yeoJohnson
        try context.space.requireUniform(algorithm: "bayesianoptimization")
        if context.space.dimension > SobolSequence.maxDimension {
            throw SuggesterError.unsupportedSpace(parameter: context.space.parameters[SobolSequence.maxDimension].name,
                                                  message: "bayesianoptimization handles at most \(SobolSequence.maxDimension) parameters")
        }
        grids = context.space.parameters.map { parameter in
            guard let count = parameter.cardinality, count <= Self.gridLimit, let values = parameter.finiteValues else { return nil }
            return values.map(parameter.encode)
        }
        categorical = context.space.parameters.map { parameter in
            if case .categorical = parameter.kind { return true }
            return false
        }
    }

    public func suggest(count: Int, history: History) throws -> [Suggestion] {
        var used = Set(history.trials.map { space.key($0.assignment) })
        if let total = space.cardinality, used.count >= total { throw SuggesterError.exhausted }
        let completed = history.completed.filter { $0.value.isFinite }
        var result: [Suggestion] = []

        // Initial design: the Sobol points in order, one per trial so far.
        if completed.count < initialPoints {
            let sobol = SobolSequence(dimension: space.dimension, seed: seed)
            var index = history.trials.count
            var tries = 0
            while result.count < count, tries < count + 1000 {
                let assignment = space.decode(sobol.points(1, skip: index)[0])
                index += 1
                tries += 1
                if used.contains(space.key(assignment)) { continue }
                used.insert(space.key(assignment))
                result.append(Suggestion(assignment: assignment, metadata: ["gp.phase": "initial"]))
            }
            return result
        }

        var rng = SeededGenerator(seed: seed, stream: history.trials.count)
        // The trials the model sees: all, or past `max_fit_trials` the best half and a spread of the rest.
        let modelled = Self.subset(of: completed.map { ($0.assignment, $0.value) }, limit: maxFitTrials, rng: &rng)
        let d = space.dimension
        let X = modelled.map { space.encode($0.0) }
        let warped = OutputWarping(modelled.map(\.1), kind: outputWarping)
        let y = Self.measuredFromWorst(warped.values)
        var (gp, fittedOn) = try fitModel(X: X, y: y, completed: completed.count, history: history, rng: &rng)
        let bestIndex = y.indices.min { y[$0] < y[$1] }!
        // Kriging believer: a pending point is taken to return the mean predicted there, and that
        // value counts for the incumbent too, so the next point is chosen to improve on it.
        var best = y[bestIndex]
        for trial in history.pending {
            let x = space.encode(trial.assignment)
            let believed = gp.predict(x).mean
            gp = gp.conditioned(on: x, value: believed)
            best = min(best, believed)
        }

        let optimizer = AcquisitionOptimizer(dimension: d, grids: grids, categorical: categorical, scales: gp.hyper.lengthscales)
        let sobol = SobolSequence(dimension: d, seed: rng.next())
        for _ in 0..<count {
            let model = gp, incumbent = best
            let acquisition = self.acquisition
            func values(_ points: [Double], _ m: Int) -> [Double] {
                let p = model.posterior(points, count: m)
                return (0..<m).map { i in
                    let sigma = p.variance[i].squareRoot()
                    switch acquisition {
                    case .logEI: return LogEI.value(mean: p.mean[i], sigma: sigma, best: incumbent).value
                    case .ucb(let kappa): return -p.mean[i] + kappa * sigma
                    }
                }
            }
            func valueAndGradient(_ x: [Double]) -> (value: Double, gradient: [Double]) {
                let p = model.predict(x, gradient: true)
                let sigma = p.variance.squareRoot()
                switch acquisition {
                case .logEI:
                    let e = LogEI.value(mean: p.mean, sigma: sigma, best: incumbent)
                    return (e.value, (0..<d).map { e.dMean * p.dMean[$0] + e.dSigma * p.dVariance[$0] / (2 * sigma) })
                case .ucb(let kappa):
                    return (-p.mean + kappa * sigma, (0..<d).map { -p.dMean[$0] + kappa * p.dVariance[$0] / (2 * sigma) })
                }
            }
            let found = optimizer.maximize(
                candidates: sobol.points(candidates, skip: result.count * candidates), starts: [X[bestIndex]],
                localSearches: Self.localSearches, rng: &rng, values: values, valueAndGradient: valueAndGradient)
            // The best point whose assignment is new.
            guard let chosen = found.first(where: { !used.contains(space.key(space.decode($0.x))) }) else { break }
            let assignment = space.decode(chosen.x)
            used.insert(space.key(assignment))
            result.append(Suggestion(assignment: assignment, metadata: [
                "gp.phase": "model",
                "gp.acquisition": "\(chosen.value)",
                Self.hyperparametersKey: gp.hyper.logVector.map { "\($0)" }.joined(separator: ","),
                Self.fittedOnKey: "\(fittedOn)",
                "gp.warping_lambda": warped.lambda.map { "\($0)" } ?? "none",
            ]))
            let x = space.encode(assignment)
            let believed = gp.predict(x).mean
            gp = gp.conditioned(on: x, value: believed)
            best = min(best, believed)
        }
        if result.isEmpty, space.cardinality != nil {
            // Every nearby point is taken: fall back to the first unused point of a Sobol sweep.
            let sweep = SobolSequence(dimension: d, seed: rng.next())
            for point in sweep.points(4096) where result.count < count {
                let assignment = space.decode(point)
                if used.insert(space.key(assignment)).inserted {
                    result.append(Suggestion(assignment: assignment, metadata: ["gp.phase": "fallback"]))
                }
            }
        }
        return result
    }

    /// The hyperparameters by MAP, warm-started from those the latest model suggestion recorded;
    /// fitted on at most `hyperparameterFitLimit` of the rows, the model then built on all of them.
    /// When the latest ones were fitted on fewer than `refitInterval` completed trials less than now,
    /// they are kept as they are. Returns the model and the number of completed trials its
    /// hyperparameters were fitted on.
    func fitModel(X: [[Double]], y: [Double], completed: Int, history: History, rng: inout SeededGenerator) throws -> (GaussianProcess, Int) {
        let d = space.dimension
        let latest = history.trials.reversed().lazy.filter { $0.metadata[Self.hyperparametersKey] != nil }.first
        let warm = latest.flatMap { $0.metadata[Self.hyperparametersKey] }
            .map { $0.utf8.split(separator: UInt8(ascii: ",")).compactMap { Double(Substring($0)) } }
            .flatMap { $0.count == d + 2 && $0.allSatisfy(\.isFinite) ? GPHyperparameters(logVector: $0) : nil }
        if let warm, let fittedOn = latest?.metadata[Self.fittedOnKey].flatMap({ Int($0) }),
           fittedOn <= completed, completed < fittedOn + Self.refitInterval(completed: completed),
           let model = GaussianProcess(X: X, y: y, hyper: warm, categorical: categorical) {
            return (model, fittedOn)
        }
        let starts = warm.map { [$0] } ?? [
            GPHyperparameters(lengthscales: Array(repeating: 0.5, count: d), scale: 1, noise: 1e-4),
            GPHyperparameters(lengthscales: Array(repeating: 0.15, count: d), scale: 1, noise: 1e-6),
        ]
        let fitRows = Self.subset(of: Array(zip(X, y)), limit: Self.hyperparameterFitLimit, rng: &rng)
        guard let fitted = GaussianProcess.fit(X: fitRows.map(\.0), y: fitRows.map(\.1), starts: starts, categorical: categorical,
                                                 maxIterations: warm == nil ? 60 : Self.warmFitIterations) else {
            throw SuggesterError.invalidSetting(name: "bayesianoptimization", message: "the Gaussian process could not be fitted")
        }
        if fitRows.count == X.count { return (fitted, completed) }
        guard let model = GaussianProcess(X: X, y: y, hyper: fitted.hyper, categorical: categorical) else {
            throw SuggesterError.invalidSetting(name: "bayesianoptimization", message: "the Gaussian process could not be fitted")
        }
        return (model, completed)
    }

    /// The values less their maximum, so the worst is 0. The process has prior mean 0: where it has
    /// no data it expects the worst value seen, not the average. With the average, every region far
    /// from the trials (the corners of the cube first) looks as promising as a typical trial and
    /// draws suggestions that return nothing; with the worst, a region is worth a trial because
    /// good values were seen near it, and the search refines what it found sooner. Over seeds
    /// 0–39 of the benchmark this lowered the median regret at 100 trials on all four functions,
    /// and with trials pending most of all.
    static func measuredFromWorst(_ values: [Double]) -> [Double] {
        guard let worst = values.max() else { return values }
        return values.map { $0 - worst }
    }

    /// All rows when there are at most `limit`; else the best ⌈limit/2⌉ by value (lowest first) and
    /// the rest drawn at random from the others, in their original order.
    static func subset<Row>(of rows: [(Row, Double)], limit: Int, rng: inout SeededGenerator) -> [(Row, Double)] {
        guard rows.count > limit else { return rows }
        let ranked = rows.indices.sorted { rows[$0].1 < rows[$1].1 }
        let keep = (limit + 1) / 2
        var others = Array(ranked[keep...])
        // A partial Fisher–Yates shuffle picks the rest.
        for i in 0..<(limit - keep) {
            let j = i + Int(rng.next() % UInt64(others.count - i))
            others.swapAt(i, j)
        }
        let chosen = Set(ranked[..<keep]).union(others[..<(limit - keep)])
        return rows.indices.filter(chosen.contains).map { rows[$0] }
    }
}
