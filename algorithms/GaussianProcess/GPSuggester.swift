#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Katib's `bayesianoptimization` (alias `gp`): Bayesian optimization with a Gaussian process.
///
/// The first `n_initial_points` trials (default 10) follow a scrambled Sobol design. After that,
/// a Matérn-5/2 ARD process is fitted to the completed trials on the unit-cube encoding (outputs
/// standardized, hyperparameters by maximum a posteriori with L-BFGS from a few starts), and each
/// suggestion maximizes log expected improvement: the best of a Sobol set of candidates and of the
/// completed points' neighbourhoods, refined by projected L-BFGS. Pending trials (and the earlier
/// suggestions of the same batch) are conditioned on as if they had returned the mean the model
/// predicts there (kriging believer), so parallel trials spread out. Failed trials are left out of
/// the model but never suggested again.
///
/// Settings: `n_initial_points`, `random_state`, `acq_func` (`logei`, or `ucb` with `kappa`),
/// `base_estimator` (`GP` only), `n_candidates` (default 1024).
public struct GPSuggester: Suggester {
    public let space: SearchSpace
    let seed: UInt64
    let initialPoints: Int
    let candidates: Int
    let acquisition: Acquisition

    enum Acquisition: Sendable {
        case logEI
        case ucb(kappa: Double)
    }

    /// Metadata key of the log-hyperparameters a model suggestion was made with.
    static let hyperparametersKey = "gp.theta"

    public init(context: SuggesterContext) throws {
        let reader = SettingsReader(context.settings)
        try reader.rejectUnknown(["n_initial_points", "random_state", "acq_func", "kappa", "base_estimator", "n_candidates"],
                                 algorithm: "bayesianoptimization")
        space = context.space
        seed = try reader.seed() ?? context.seed
        initialPoints = try reader.int("n_initial_points", in: 1...10_000) ?? 10
        candidates = try reader.int("n_candidates", in: 16...100_000) ?? 1024
        if let estimator = context.settings["base_estimator"], estimator.trimmingSpaces.uppercased() != "GP" {
            throw SuggesterError.invalidSetting(name: "base_estimator", message: "\"\(estimator)\" is not supported; knob's bayesianoptimization uses a Gaussian process (GP)")
        }
        switch context.settings["acq_func"].map({ String($0.trimmingSpaces).lowercased() }) ?? "logei" {
        case "logei", "ei":
            acquisition = .logEI
        case "ucb", "lcb":
            let text = context.settings["kappa"] ?? "1.96"
            guard let kappa = Double(text.trimmingSpaces), kappa >= 0 else {
                throw SuggesterError.invalidSetting(name: "kappa", message: "\"\(text)\" is not a non-negative number")
            }
            acquisition = .ucb(kappa: kappa)
        case let other:
            throw SuggesterError.invalidSetting(name: "acq_func", message: "\"\(other)\" is not one of logei, ucb")
        }
        if context.space.dimension > SobolSequence.maxDimension {
            throw SuggesterError.unsupportedSpace(parameter: context.space.parameters[SobolSequence.maxDimension].name,
                                                  message: "bayesianoptimization handles at most \(SobolSequence.maxDimension) parameters")
        }
    }

    public func suggest(count: Int, history: History) throws -> [Suggestion] {
        let finite = space.cardinality != nil
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
                if finite, used.contains(space.key(assignment)) { continue }
                used.insert(space.key(assignment))
                result.append(Suggestion(assignment: assignment, metadata: ["gp.phase": "initial"]))
            }
            return result
        }

        // The model: standardized outputs of completed trials.
        let X = completed.map { space.encode($0.assignment) }
        let raw = completed.map(\.value)
        let mean = raw.reduce(0, +) / Double(raw.count)
        let std = max(1e-12, (raw.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(raw.count)).squareRoot())
        let y = raw.map { ($0 - mean) / std }
        let d = space.dimension
        // Warm start: the hyperparameters the latest model suggestion recorded, when there is one.
        let warm = history.trials.reversed().lazy.compactMap { $0.metadata[Self.hyperparametersKey] }.first
            .map { $0.utf8.split(separator: UInt8(ascii: ",")).compactMap { Double(Substring($0)) } }
            .flatMap { $0.count == d + 2 ? GPHyperparameters(logVector: $0) : nil }
        let starts = warm.map { [$0] } ?? [
            GPHyperparameters(lengthscales: Array(repeating: 0.5, count: d), scale: 1, noise: 1e-4),
            GPHyperparameters(lengthscales: Array(repeating: 0.15, count: d), scale: 1, noise: 1e-6),
        ]
        guard var gp = GaussianProcess.fit(X: X, y: y, starts: starts) else {
            throw SuggesterError.invalidSetting(name: "bayesianoptimization", message: "the Gaussian process could not be fitted")
        }
        let best = y.min() ?? 0
        for trial in history.pending {
            let x = space.encode(trial.assignment)
            gp = gp.conditioned(on: x, value: gp.predict(x).mean)
        }

        var rng = SeededGenerator(seed: seed, stream: history.trials.count)
        let sobol = SobolSequence(dimension: d, seed: rng.next())
        for _ in 0..<count {
            let model = gp
            func score(_ x: [Double]) -> (value: Double, gradient: [Double]) {
                let p = model.predict(x, gradient: true)
                let sigma = p.variance.squareRoot()
                let dSigma = p.dVariance.map { $0 / (2 * sigma) }
                switch acquisition {
                case .logEI:
                    let e = LogEI.value(mean: p.mean, sigma: sigma, best: best)
                    return (e.value, (0..<d).map { e.dMean * p.dMean[$0] + e.dSigma * dSigma[$0] })
                case .ucb(let kappa):
                    return (-p.mean + kappa * sigma, (0..<d).map { -p.dMean[$0] + kappa * dSigma[$0] })
                }
            }
            // Candidates: a Sobol set, and points near the best completed ones.
            var pool = sobol.points(candidates, skip: result.count * candidates)
            for (x, _) in zip(X, y).sorted(by: { $0.1 < $1.1 }).prefix(5) {
                for _ in 0..<20 { pool.append(x.map { min(1, max(0, $0 + 0.05 * rng.nextGaussian())) }) }
            }
            let ranked = pool.map { ($0, score($0).value) }.filter { $0.1.isFinite }.sorted { $0.1 > $1.1 }
            var refined: [([Double], Double)] = []
            for (start, _) in ranked.prefix(3) {
                let r = LBFGS.minimize(start, lower: Array(repeating: 0, count: d), upper: Array(repeating: 1, count: d), maxIterations: 40) { x in
                    let s = score(x)
                    return (-s.value, s.gradient.map { -$0 })
                }
                refined.append((r.x, -r.value))
            }
            // The best point whose assignment is new (in a finite space), else the best.
            let order = (refined + ranked.prefix(200).map { ($0.0, $0.1) }).sorted { $0.1 > $1.1 }
            let chosen = order.first { !finite || !used.contains(space.key(space.decode($0.0))) } ?? order[0]
            let assignment = space.decode(chosen.0)
            if finite, used.contains(space.key(assignment)) { break }
            used.insert(space.key(assignment))
            result.append(Suggestion(assignment: assignment, metadata: [
                "gp.phase": "model",
                Self.hyperparametersKey: gp.hyper.logVector.map { "\($0)" }.joined(separator: ","),
            ]))
            let x = space.encode(assignment)
            gp = gp.conditioned(on: x, value: gp.predict(x).mean)
        }
        return result
    }
}
