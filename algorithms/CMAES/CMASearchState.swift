/// The search distribution of one CMA-ES run, as the suggester drives it: sample λ points, tell
/// them back with their values, ask whether the run should end.
///
/// Raw samples are what `tell` learns from (the suggester stores them on the trials); evaluated
/// points are on the unit cube of the search space, in its order.
protocol CMASearchState: Sendable {
    /// Strategy parameters; `p.lambda` is the population size.
    var p: CMAParameters { get }
    /// The mean of the Gaussian part.
    var mean: [Double] { get }
    var sigma: Double { get }
    /// The step size the run started with.
    var sigma0: Double { get }
    /// Why this run should end, once it should.
    var stopReason: String? { get }
    /// One sample drawn with `rng`.
    func sample(_ rng: inout SeededGenerator) -> (raw: [Double], evaluated: [Double])
    /// The sample of member `index` of a generation: drawn with `rng`, and with what the whole
    /// generation shares drawn from (a copy of) `shared`, which is the same for every member.
    func sample(_ rng: inout SeededGenerator, member index: Int, shared: SeededGenerator) -> (raw: [Double], evaluated: [Double])
    /// Updates the distribution from exactly λ raw samples and their values (lower is better).
    mutating func tell(_ solutions: [(x: [Double], f: Double)])
    /// Writes everything `tell` changes, exactly (a replay checkpoint).
    func encode(into writer: inout StateWriter)
    /// Reads back what `encode(into:)` wrote, into a state made as that one was (same space, λ and
    /// σ0); throws when the bytes do not fit it.
    mutating func restore(from reader: inout StateReader) throws(StateReader.Malformed)
}

extension CMAState: CMASearchState {
    /// Members are drawn independently.
    func sample(_ rng: inout SeededGenerator, member index: Int, shared: SeededGenerator) -> (raw: [Double], evaluated: [Double]) {
        sample(&rng)
    }
}
extension CatCMAState: CMASearchState {}
