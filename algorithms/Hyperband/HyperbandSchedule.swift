/// The brackets of Hyperband (Li et al. 2018, Algorithm 1) for a largest resource R and a
/// reduction factor η.
///
/// Notation: s_max = ⌊log_η R⌋. Bracket s, for s = s_max down to 0, starts
/// n = ⌈(s_max + 1)·η^s / (s + 1)⌉ configurations with the resource r = R·η^−s each; its rung i
/// (i = 0 … s) runs the best n_i = ⌊n·η^−i⌋ of them with r_i = r·η^i = R·η^(i−s). Every bracket
/// spends about (s_max + 1)·R, and its last rung runs with R.
public struct HyperbandSchedule: Sendable, Hashable {
    /// One round of successive halving: n_i configurations, each given r_i of the resource.
    public struct Rung: Sendable, Hashable {
        /// n_i: how many configurations run in this rung.
        public var configurations: Int
        /// r_i: the resource each of them is given.
        public var resource: Double
    }

    /// One run of successive halving, from many configurations on little resource to few on R.
    public struct Bracket: Sendable, Hashable {
        /// s: the bracket's index, also its number of halvings.
        public var s: Int
        /// Rungs 0 … s, in the order they run.
        public var rungs: [Rung]
    }

    /// R (Katib's `r_l`).
    public let maxResource: Double
    /// η: the factor by which each rung cuts the configurations and multiplies their resource.
    public let eta: Int
    /// s_max = ⌊log_η R⌋.
    public let sMax: Int
    /// The brackets in the order they run: s = s_max first.
    public let brackets: [Bracket]

    /// The schedule for `maxResource` ≥ 1 and `eta` ≥ 2 (the settings check both, and that the
    /// schedule stays small, before building one).
    public init(maxResource: Double, eta: Int) {
        precondition(maxResource >= 1 && maxResource.isFinite && eta >= 2, "Hyperband needs R ≥ 1 and η ≥ 2")
        self.maxResource = maxResource
        self.eta = eta
        // The largest s with η^s ≤ R, counted in integers so that R = η^k gives exactly k
        // (log(81)/log(3) is not exactly 4 in floating point).
        var sMax = 0
        while Double(Self.power(eta, sMax + 1)) <= maxResource * (1 + 1e-12) { sMax += 1 }
        self.sMax = sMax
        brackets = stride(from: sMax, through: 0, by: -1).map { s in
            let n = Self.startingConfigurations(sMax: sMax, s: s, eta: eta)
            let rungs = (0...s).map { i in
                Rung(configurations: n / Self.power(eta, i), resource: maxResource / Double(Self.power(eta, s - i)))
            }
            return Bracket(s: s, rungs: rungs)
        }
    }

    /// n = ⌈(s_max + 1)·η^s / (s + 1)⌉.
    static func startingConfigurations(sMax: Int, s: Int, eta: Int) -> Int {
        ((sMax + 1) * power(eta, s) + s) / (s + 1)
    }

    /// The trials of a whole run: every rung of every bracket.
    public var trialCount: Int {
        brackets.reduce(0) { total, bracket in total + bracket.rungs.reduce(0) { $0 + $1.configurations } }
    }

    /// The resource summed over every trial of a whole run.
    public var totalResource: Double {
        brackets.reduce(0) { total, bracket in
            total + bracket.rungs.reduce(0) { $0 + Double($1.configurations) * $1.resource }
        }
    }

    /// The bracket with index s.
    public func bracket(_ s: Int) -> Bracket? {
        brackets.first { $0.s == s }
    }

    static func power(_ base: Int, _ exponent: Int) -> Int {
        var result = 1
        for _ in 0..<exponent { result *= base }
        return result
    }
}
