/// Katib's `hyperband`: brackets of successive halving (Li et al. 2018) over the parameters of the
/// spec, with one parameter, `resource_name`, as the budget each trial is given (epochs, steps…).
///
/// The schedule is `HyperbandSchedule`'s. Each bracket draws its configurations at random (as
/// `random` would, distributions honoured; in a finite space without repeats, and fewer when the
/// space has fewer); rung 0 runs them all with the bracket's smallest resource. Once every trial of
/// a rung has ended, the best ⌊n·η^−(i+1)⌋ of those that completed — ranked by the objective, a
/// tie going to the earlier trial — run again in the next rung with η times the resource; failed
/// trials are never promoted. The resource parameter is set by the schedule, whatever its
/// `feasibleSpace` says, as Katib does: an int gets R·η^(i−s) rounded to the nearest whole number,
/// a double gets it exactly.
///
/// Brackets are independent: while a rung waits for its last trials, free slots go to the next
/// bracket, so any `parallelTrialCount` works (Katib asks for at least η^s_max). Once every rung of
/// every bracket has run, `suggest` throws `exhausted`.
///
/// Restarts: every trial carries its bracket, rung and configuration in its metadata, and a
/// bracket's configurations depend on the seed and the bracket only, so a restarted process
/// finds where each bracket is in the history and goes on with the same promotions, neither
/// repeating a rung's trial nor skipping one.
///
/// Settings: `resource_name` (required: an int or double parameter), `r_l` (required: R, at least
/// η; a whole number for an int resource), `eta` (whole, 2…100, default 3), `random_state`.
public struct HyperbandSuggester: Suggester {
    public let space: SearchSpace
    public let seed: UInt64
    /// The parameter that is the budget.
    public let resource: Parameter
    public let schedule: HyperbandSchedule
    /// The space without the resource parameter: what the brackets draw configurations from.
    let searched: SearchSpace

    static let settingNames: Set<String> = ["resource_name", "r_l", "eta", "random_state"]
    static let bracketKey = "hyperband.bracket"
    static let rungKey = "hyperband.rung"
    static let configurationKey = "hyperband.config"
    /// The most trials a whole run may have, so that a schedule never sizes work without bound.
    public static let maxTrialCount = 100_000
    /// The largest `r_l` (the schedule's size is checked after this first bound).
    static let maxResourceLimit = 1e9

    public init(context: SuggesterContext) throws {
        let settings = context.settings
        let reader = SettingsReader(settings)
        try reader.rejectUnknown(Self.settingNames, algorithm: "hyperband")
        seed = try reader.seed() ?? context.seed
        space = context.space

        let budgets = context.space.parameters.filter(\.isNumericRange).map(\.name)
        let candidates = budgets.isEmpty ? "the spec has no int or double parameter" : "one of \(budgets.joined(separator: ", "))"
        guard let name = settings["resource_name"].map({ String($0.trimmingSpaces) }) else {
            throw SuggesterError.invalidSetting(
                name: "resource_name", message: "hyperband needs it: the parameter that is each trial's budget (epochs, steps…), \(candidates)")
        }
        guard let resource = context.space.parameters.first(where: { $0.name == name }) else {
            throw SuggesterError.invalidSetting(name: "resource_name", message: "\"\(name)\" is not a parameter of the spec; \(candidates)")
        }
        guard resource.isNumericRange else {
            throw SuggesterError.invalidSetting(
                name: "resource_name", message: "parameter \(name) is \(resource.kindName); the budget must be an int or a double parameter")
        }
        guard context.space.parameters.count > 1 else {
            throw SuggesterError.invalidSetting(
                name: "resource_name", message: "\(name) is the only parameter; hyperband needs at least one other parameter to search")
        }
        self.resource = resource
        searched = SearchSpace(context.space.parameters.filter { $0.name != name })

        let eta = try reader.int("eta", in: 2...100) ?? 3
        guard let text = settings["r_l"] else {
            throw SuggesterError.invalidSetting(name: "r_l", message: "hyperband needs it: the largest budget a trial gets (the most epochs)")
        }
        guard let maxResource = Double(text.trimmingSpaces), maxResource.isFinite, maxResource >= Double(eta),
              maxResource <= Self.maxResourceLimit else {
            throw SuggesterError.invalidSetting(
                name: "r_l", message: "\"\(text)\" is not a number in \(eta)...\(formatDouble(Self.maxResourceLimit)) "
                    + "(at least eta, \(eta): below it hyperband has a single trial)")
        }
        if case .int = resource.kind, maxResource != maxResource.rounded() {
            throw SuggesterError.invalidSetting(name: "r_l", message: "\"\(text)\" is not a whole number, and the budget \(name) is an int")
        }
        let schedule = HyperbandSchedule(maxResource: maxResource, eta: eta)
        if schedule.trialCount > Self.maxTrialCount {
            throw SuggesterError.invalidSetting(
                name: "r_l", message: "r_l \(formatDouble(maxResource)) with eta \(eta) makes a schedule of \(schedule.trialCount) trials, "
                    + "more than the \(Self.maxTrialCount) a hyperband run may have; use a smaller r_l or a larger eta")
        }
        self.schedule = schedule
    }

    /// Where a trial stands in the schedule.
    struct Position: Hashable {
        var bracket: Int
        var rung: Int
    }

    /// A trial of the history, as the schedule sees it.
    struct Member {
        /// The configuration's index among its bracket's draws.
        var configuration: Int
        /// The trial's place in the history.
        var index: Int
        var trial: History.Trial
    }

    public func suggest(count: Int, history: History) throws -> [Suggestion] {
        guard count > 0 else { return [] }
        var rungs: [Position: [Member]] = [:]
        for (index, trial) in history.trials.enumerated() {
            guard let bracket = trial.metadata[Self.bracketKey].flatMap(Int.init),
                  let rung = trial.metadata[Self.rungKey].flatMap(Int.init),
                  let configuration = trial.metadata[Self.configurationKey].flatMap(Int.init) else { continue }
            rungs[Position(bracket: bracket, rung: rung), default: []].append(Member(configuration: configuration, index: index, trial: trial))
        }

        var result: [Suggestion] = []
        // Some rung still has trials to create or waits for results.
        var unfinished = false
        for bracket in schedule.brackets where result.count < count {
            // A finite space may hold fewer configurations than the bracket starts; the rungs shrink alike.
            let start = searched.cardinality.map { Swift.min(bracket.rungs[0].configurations, $0) } ?? bracket.rungs[0].configurations
            var members = Array(0..<start)
            for (i, rung) in bracket.rungs.enumerated() {
                let trials = rungs[Position(bracket: bracket.s, rung: i)] ?? []
                let created = Set(trials.map(\.configuration))
                let missing = members.filter { !created.contains($0) }
                if !missing.isEmpty {
                    unfinished = true
                    let batch = missing.prefix(count - result.count)
                    let bases: [Int: Assignment]
                    if i == 0 {
                        let drawn = try configurations(bracket: bracket.s, count: (batch.max() ?? 0) + 1)
                        bases = Dictionary(uniqueKeysWithValues: batch.map { ($0, drawn[$0]) })
                    } else {
                        let previous = rungs[Position(bracket: bracket.s, rung: i - 1)] ?? []
                        bases = Dictionary(previous.map { ($0.configuration, $0.trial.assignment) }, uniquingKeysWith: { first, _ in first })
                    }
                    for configuration in batch {
                        guard let base = bases[configuration] else { continue }
                        result.append(suggestion(base, bracket: bracket.s, rung: i, configuration: configuration, resource: rung.resource))
                    }
                    break
                }
                if trials.contains(where: { $0.trial.outcome == .pending }) {
                    unfinished = true
                    break
                }
                guard i + 1 < bracket.rungs.count else { break }
                // The rung is over: its best go on to the next.
                let keep = start / HyperbandSchedule.power(schedule.eta, i + 1)
                let current = Set(members)
                members = best(keep, of: trials.filter { current.contains($0.configuration) })
                if members.isEmpty { break }
            }
        }
        if result.isEmpty, !unfinished { throw SuggesterError.exhausted }
        return result
    }

    /// The configurations of `count` completed trials with the best objective (a tie goes to the
    /// earlier trial), best first; failed and pending trials are never among them.
    func best(_ count: Int, of trials: [Member]) -> [Int] {
        var ranked: [(value: Double, member: Member)] = []
        for member in trials {
            if case .completed(let value) = member.trial.outcome, !value.isNaN { ranked.append((value, member)) }
        }
        ranked.sort { ($0.value, $0.member.index) < ($1.value, $1.member.index) }
        var seen = Set<Int>()
        return ranked.map(\.member.configuration).filter { seen.insert($0).inserted }.prefix(count).map { $0 }
    }

    /// The first `count` configurations that bracket s draws, the same on every call: `random`'s
    /// draws (without repeats in a finite space) from a seed of the bracket's own.
    func configurations(bracket s: Int, count: Int) throws -> [Assignment] {
        var mixer = SeededGenerator(seed: seed, stream: s + 1)
        let random = try RandomSuggester(context: SuggesterContext(space: searched, seed: mixer.next()))
        return try random.suggest(count: count, history: History()).map(\.assignment)
    }

    /// A configuration with the rung's resource, and where it stands in the schedule.
    func suggestion(_ base: Assignment, bracket: Int, rung: Int, configuration: Int, resource amount: Double) -> Suggestion {
        var assignment = base
        assignment.values[resource.name] = resourceValue(amount)
        return Suggestion(assignment: assignment, metadata: [
            Self.bracketKey: String(bracket),
            Self.rungKey: String(rung),
            Self.configurationKey: String(configuration),
        ])
    }

    /// The resource parameter's value for an amount of the schedule: rounded for an int.
    public func resourceValue(_ amount: Double) -> ParameterValue {
        if case .int = resource.kind { return .int(Int(amount.rounded())) }
        return .double(amount)
    }
}

extension Parameter {
    /// Whether this is an int or a double (a range, not a list).
    var isNumericRange: Bool {
        switch kind {
        case .int, .double: return true
        case .discrete, .categorical: return false
        }
    }

    /// The parameter's type as Katib spells it (`int`, `double`, `discrete`, `categorical`).
    var kindName: String {
        switch kind {
        case .int: return "int"
        case .double: return "double"
        case .discrete: return "discrete"
        case .categorical: return "categorical"
        }
    }
}
