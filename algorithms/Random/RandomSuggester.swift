/// Katib's `random`: every parameter drawn independently — uniform, log-uniform for
/// `distribution: logUniform`, a normal truncated to the bounds for `normal` (in log units for
/// `logNormal`; ints and steps snapped to their grid), uniform over whole numbers, steps and choices.
///
/// Settings: `random_state` (the seed). In a finite space it never repeats an assignment that
/// was already suggested, and throws `exhausted` once every one has been. With a normal
/// parameter, a repeat is redrawn; when redraws keep landing on used points (the space nearly
/// used up), the rest is taken in random order.
public struct RandomSuggester: Suggester {
    public let space: SearchSpace
    public let seed: UInt64

    /// Finite spaces up to this size are sampled without replacement from an explicit list.
    static let enumerationLimit = 200_000

    public init(context: SuggesterContext) throws {
        let reader = SettingsReader(context.settings)
        try reader.rejectUnknown(["random_state"], algorithm: "random")
        space = context.space
        seed = try reader.seed() ?? context.seed
    }

    public func suggest(count: Int, history: History) throws -> [Suggestion] {
        var rng = SeededGenerator(seed: seed, stream: history.trials.count)
        let cardinality = space.cardinality
        // With a continuous parameter two draws never coincide: no need to track what was used.
        guard let cardinality else {
            return (0..<count).map { _ in Suggestion(assignment: sample(&rng)) }
        }
        var used = Set(history.trials.map { space.key($0.assignment) })
        if used.count >= cardinality { throw SuggesterError.exhausted }

        if cardinality <= Self.enumerationLimit, space.isUniform {
            var remaining = GridEnumerator(space: space)
                .all()
                .filter { !used.contains(space.key($0)) }
            var result: [Suggestion] = []
            while result.count < count, !remaining.isEmpty {
                remaining.swapAt(Int(rng.next() % UInt64(remaining.count)), remaining.count - 1)
                result.append(Suggestion(assignment: remaining.removeLast()))
            }
            return result
        }

        var result: [Suggestion] = []
        for _ in 0..<count where used.count < cardinality {
            var candidate = sample(&rng)
            // A large discrete space: a few redraws settle collisions.
            var tries = 0
            while used.contains(space.key(candidate)), tries < 1000 {
                candidate = sample(&rng)
                tries += 1
            }
            if used.contains(space.key(candidate)), cardinality <= Self.enumerationLimit {
                let remaining = GridEnumerator(space: space).all().filter { !used.contains(space.key($0)) }
                candidate = remaining[Int(rng.next() % UInt64(remaining.count))]
            }
            used.insert(space.key(candidate))
            result.append(Suggestion(assignment: candidate))
        }
        return result
    }

    private func sample(_ rng: inout SeededGenerator) -> Assignment {
        space.sample(at: (0..<space.dimension).map { _ in rng.unit() })
    }
}
