/// Asynchronous successive halving (ASHA; Li et al. 2020, "A System for Massively Parallel
/// Hyperparameter Tuning").
///
/// Rung k sits at step `min_resource × reduction_factor^(min_early_stopping_rate + k)`. When a trial
/// reaches a rung, its best value so far is ranked among those of every trial that reached the
/// rung before it; it continues only if it is among the best `max(1, ⌊n / reduction_factor⌋)` of
/// those n trials (itself included), and stops otherwise. No rung waits to fill: a decision uses
/// only the trials already there, so parallel trials never wait for each other, and since it uses
/// only what came before, it does not change when later trials arrive.
public struct SuccessiveHalving: StoppingRule {
    public static let settingNames: Set<String> = ["min_resource", "reduction_factor", "min_early_stopping_rate"]

    public let minResource: Int
    public let reductionFactor: Int
    public let minEarlyStoppingRate: Int
    public let maximize: Bool

    public init(context: StoppingContext) throws {
        let reader = SettingsReader(context.settings)
        try reader.rejectUnknown(Self.settingNames, algorithm: "successivehalving")
        minResource = try reader.int("min_resource", in: 1...1_000_000_000) ?? 1
        reductionFactor = try reader.int("reduction_factor", in: 2...1_000) ?? 3
        minEarlyStoppingRate = try reader.int("min_early_stopping_rate", in: 0...60) ?? 0
        maximize = context.maximize
        if rungStep(0) == nil {
            throw SuggesterError.invalidSetting(
                name: "min_early_stopping_rate",
                message: "min_resource × reduction_factor^min_early_stopping_rate is beyond any step; lower one of them")
        }
    }

    /// The step of rung `k`, or nil when it is beyond what an Int holds.
    func rungStep(_ k: Int) -> Int? {
        var step = minResource
        for _ in 0..<(minEarlyStoppingRate + k) {
            let (next, overflow) = step.multipliedReportingOverflow(by: reductionFactor)
            if overflow { return nil }
            step = next
        }
        return step
    }

    public func decide(_ trial: TrialCurve, others: [TrialCurve]) -> StopDecision {
        guard let latest = trial.points.last else { return .continue }
        var rung = 0
        while let step = rungStep(rung), step <= latest.step {
            if let reason = verdict(trial, others: others, rung: rung, step: step) { return .stop(reason) }
            rung += 1
        }
        return .continue
    }

    /// The stop reason when `trial` does not continue past rung `rung` at `step`; nil when it does.
    private func verdict(_ trial: TrialCurve, others: [TrialCurve], rung: Int, step: Int) -> StopReason? {
        guard let arrival = trial.firstPoint(reaching: step), let own = trial.best(upTo: arrival.step, maximize: maximize) else { return nil }
        var values = [own.value]
        for other in others where other.id != trial.id {
            guard let reached = other.firstPoint(reaching: step), reached.order < arrival.order,
                  let value = other.best(upTo: reached.step, maximize: maximize) else { continue }
            values.append(value.value)
        }
        values.sort(by: maximize ? { $0 > $1 } : { $0 < $1 })
        let kept = Swift.max(1, values.count / reductionFactor)
        let threshold = values[kept - 1]
        let continues = maximize ? own.value >= threshold : own.value <= threshold
        guard !continues else { return nil }
        let better = values.filter { maximize ? $0 > own.value : $0 < own.value }.count
        return StopReason(rule: .rung(rung: rung, resource: step, rank: better + 1, reached: values.count, kept: kept),
                          value: own.value, step: arrival.step, threshold: threshold, maximize: maximize)
    }
}
