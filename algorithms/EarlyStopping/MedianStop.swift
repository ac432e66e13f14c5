/// Katib's `medianstop`: once a running trial has reported its objective `start_step` times, it
/// stops when its best value so far is worse than the median of the completed trials' running
/// averages up to the same step. Nothing stops until `min_trials_required` completed trials have
/// reached that step.
///
/// The median is the true median (the middle value, or the mean of the two middle values); Katib's
/// service computes a mean of the averages instead.
public struct MedianStop: StoppingRule {
    public static let settingNames: Set<String> = ["min_trials_required", "start_step"]

    public let minTrialsRequired: Int
    public let startStep: Int
    public let maximize: Bool

    public init(context: StoppingContext) throws {
        let reader = SettingsReader(context.settings)
        try reader.rejectUnknown(Self.settingNames, algorithm: "medianstop")
        minTrialsRequired = try reader.int("min_trials_required", in: 1...1_000_000) ?? 3
        startStep = try reader.int("start_step", in: 1...1_000_000_000) ?? 4
        maximize = context.maximize
    }

    public func decide(_ trial: TrialCurve, others: [TrialCurve]) -> StopDecision {
        guard trial.points.count >= startStep, let latest = trial.points.last,
              let best = trial.best(maximize: maximize) else { return .continue }
        let step = latest.step
        var averages: [Double] = []
        for other in others where other.state == .completed && other.id != trial.id {
            var sum = 0.0
            var count = 0
            for point in other.points where point.step <= step {
                sum += point.value
                count += 1
            }
            // A completed trial counts once it has run as far as this step.
            if count > 0, other.points.contains(where: { $0.step >= step }) { averages.append(sum / Double(count)) }
        }
        guard averages.count >= minTrialsRequired, averages.count > 0 else { return .continue }
        averages.sort()
        let middle = averages.count / 2
        let median = averages.count % 2 == 1 ? averages[middle] : (averages[middle - 1] + averages[middle]) / 2
        let worse = maximize ? best.value < median : best.value > median
        guard worse else { return .continue }
        return .stop(StopReason(rule: .median(trials: averages.count), value: best.value, step: step, threshold: median, maximize: maximize))
    }
}
