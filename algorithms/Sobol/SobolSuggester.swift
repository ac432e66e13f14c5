/// Katib's `sobol`: the points of one scrambled Sobol sequence over the whole space, in order.
///
/// The i-th trial of the experiment (pending ones included) gets the i-th point, so a restarted
/// process continues the same sequence. Ints, steps, discrete values and categoricals are decoded
/// from the unit cube; a `normal`/`logNormal` parameter maps its coordinate through the quantile of
/// its truncated normal. In a finite space a point that decodes to an assignment already used is
/// skipped; past `skipLimit` skips the first unused assignment in grid order is taken, and once
/// every one has been used the suggester throws `exhausted`.
///
/// Settings: `random_state` (the seed of the scramble).
public struct SobolSuggester: Suggester {
    public let space: SearchSpace
    public let seed: UInt64
    let sequence: SobolSequence

    /// Sequence points skipped for one suggestion before falling back to grid order.
    static let skipLimit = 1000

    public init(context: SuggesterContext) throws {
        let reader = SettingsReader(context.settings)
        try reader.rejectUnknown(["random_state"], algorithm: "sobol")
        space = context.space
        seed = try reader.seed() ?? context.seed
        if context.space.dimension > SobolSequence.maxDimension {
            throw SuggesterError.unsupportedSpace(
                parameter: context.space.parameters[SobolSequence.maxDimension].name,
                message: "sobol handles at most \(SobolSequence.maxDimension) parameters and this space has \(context.space.dimension); "
                    + "search fewer parameters, or use random")
        }
        sequence = SobolSequence(dimension: max(1, context.space.dimension), seed: seed)
    }

    public func suggest(count: Int, history: History) throws -> [Suggestion] {
        let cardinality = space.cardinality
        // With a continuous parameter two points never decode to the same assignment.
        var used = cardinality == nil ? [] : Set(history.trials.map { space.key($0.assignment) })
        if let cardinality, used.count >= cardinality { throw SuggesterError.exhausted }
        var result: [Suggestion] = []
        var index = history.trials.count
        var skipped = 0
        while result.count < count {
            if let cardinality, used.count >= cardinality { break }
            let wanted = count - result.count
            for point in sequence.points(cardinality == nil ? wanted : wanted + 16 + skipped, skip: index) {
                index += 1
                let assignment = space.sample(at: Array(point.prefix(space.dimension)))
                guard cardinality != nil else {
                    result.append(Suggestion(assignment: assignment))
                    continue
                }
                if used.insert(space.key(assignment)).inserted {
                    result.append(Suggestion(assignment: assignment))
                    skipped = 0
                    if result.count == count { break }
                } else {
                    skipped += 1
                    if skipped >= Self.skipLimit { break }
                }
            }
            if skipped >= Self.skipLimit {
                // The sequence keeps landing on used points: take the first unused one in grid order.
                let grid = GridEnumerator(space: space)
                var position = 0
                while used.contains(space.key(grid.point(at: position))) { position += 1 }
                let assignment = grid.point(at: position)
                used.insert(space.key(assignment))
                result.append(Suggestion(assignment: assignment))
                skipped = 0
            }
        }
        return result
    }
}
