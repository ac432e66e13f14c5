/// Early stopping: rules that look at a running trial's intermediate objective values, and at the
/// other trials of its experiment, and say whether it should stop now.
///
/// Contract: a rule is a pure function of its settings and the curves it is given. It keeps no
/// state between calls, so a restarted process that reads the same curves back from the store
/// reaches the same decisions.
public protocol StoppingRule: Sendable {
    /// Creates the rule, checking its settings; throws `SuggesterError.invalidSetting` for a setting
    /// that does not apply or a value out of range.
    init(context: StoppingContext) throws

    /// Whether `trial` (running) should stop, given every other trial of the experiment.
    func decide(_ trial: TrialCurve, others: [TrialCurve]) -> StopDecision
}

/// What a rule is created with.
public struct StoppingContext: Sendable {
    /// `earlyStopping.algorithmSettings` by name, values as written.
    public var settings: [String: String]
    /// Whether larger objective values are better.
    public var maximize: Bool

    public init(settings: [String: String] = [:], maximize: Bool) {
        self.settings = settings
        self.maximize = maximize
    }
}

/// One trial's objective reports, in the order they were read.
public struct TrialCurve: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        /// Still running: its curve may grow.
        case running
        /// Ran to its end and succeeded.
        case completed
        /// Ended any other way (failed, killed, stopped early).
        case ended
    }

    /// A report: its step, its value, and its place in the order the experiment's reports were
    /// stored (across all trials), which says which trial reached a step first.
    public struct Point: Sendable, Hashable {
        public var step: Int
        public var value: Double
        public var order: Int64

        public init(step: Int, value: Double, order: Int64) {
            self.step = step
            self.value = value
            self.order = order
        }
    }

    public var id: Int64
    public var state: State
    public var points: [Point]

    public init(id: Int64, state: State, points: [Point]) {
        self.id = id
        self.state = state
        self.points = points
    }

    /// The best value among the reports up to `step` (all when nil), and how many there are.
    func best(upTo step: Int? = nil, maximize: Bool) -> (value: Double, count: Int)? {
        var best: Double?
        var count = 0
        for point in points where step == nil || point.step <= step! {
            count += 1
            if let current = best {
                best = maximize ? Swift.max(current, point.value) : Swift.min(current, point.value)
            } else {
                best = point.value
            }
        }
        return best.map { ($0, count) }
    }

    /// The first report at or beyond `step`, if the trial got there.
    func firstPoint(reaching step: Int) -> Point? {
        points.first { $0.step >= step }
    }
}

/// A rule's answer.
public enum StopDecision: Sendable, Hashable {
    case `continue`
    case stop(StopReason)

    public var reason: StopReason? {
        if case .stop(let reason) = self { return reason }
        return nil
    }
}

/// Why a trial stops, in numbers; `message` puts them in words.
public struct StopReason: Sendable, Hashable {
    public enum Rule: Sendable, Hashable {
        /// medianstop: the median of `trials` completed trials' running averages to `step`.
        case median(trials: Int)
        /// successivehalving: at rung `rung` (resource `resource`), the trial ranked `rank` of
        /// `reached` trials, where the best `kept` continue.
        case rung(rung: Int, resource: Int, rank: Int, reached: Int, kept: Int)
    }

    public var rule: Rule
    /// The trial's best value so far, at `step`.
    public var value: Double
    public var step: Int
    /// The value it had to beat (the median, or the worst value that continues at the rung).
    public var threshold: Double
    public var maximize: Bool

    /// For example `accuracy 0.71 at step 4 is below the median 0.83 of 5 completed trials`.
    public func message(metric: String, format: (Double) -> String) -> String {
        let side = maximize ? "below" : "above"
        switch rule {
        case .median(let trials):
            return "\(metric) \(format(value)) at step \(step) is \(side) the median \(format(threshold)) "
                + "of \(trials) completed trial\(trials == 1 ? "" : "s") at that step"
        case .rung(let rung, let resource, let rank, let reached, let kept):
            return "\(metric) \(format(value)) at rung \(rung) (step \(resource)) ranks \(rank) of \(reached) trial\(reached == 1 ? "" : "s") "
                + "that reached it; only the best \(kept) continue (\(side) \(format(threshold)))"
        }
    }
}

/// Maps Katib's `earlyStopping.algorithmName` to rules.
public enum StoppingRuleRegistry {
    public static let types: [String: any StoppingRule.Type] = [
        "medianstop": MedianStop.self,
        "successivehalving": SuccessiveHalving.self,
    ]

    /// The rule names knob accepts, sorted.
    public static var names: [String] { types.keys.sorted() }

    /// A rule for `algorithmName`, its settings checked.
    public static func make(_ algorithmName: String, context: StoppingContext) throws -> any StoppingRule {
        guard let type = types[algorithmName] else {
            throw SuggesterError.invalidSetting(
                name: "algorithmName", message: "unknown early stopping algorithm \"\(algorithmName)\"; known: \(names.joined(separator: ", "))")
        }
        return try type.init(context: context)
    }
}
