/// Told of the engine's work as it happens: each suggestion's time, and each batch of a trial's output
/// read. knobd turns these into `/metrics`; `knob run` tells nobody.
///
/// The closures are called from the controller's and the trials' tasks, concurrently: they must be
/// thread-safe and cheap. `scraped` is called once per batch of output read, not once per line.
public struct EngineObserver: Sendable {
    /// A call of the suggester: the experiment's algorithm name, how long the call took, and how many
    /// assignments it returned (0 when the space is exhausted or the call failed).
    public var suggestion: @Sendable (_ algorithm: String, _ duration: Duration, _ assignments: Int) -> Void
    /// A batch of a trial's output read: its complete lines, its bytes, and the reports found in it.
    public var scraped: @Sendable (_ lines: Int, _ bytes: Int, _ reports: Int) -> Void

    public init(suggestion: @escaping @Sendable (_ algorithm: String, _ duration: Duration, _ assignments: Int) -> Void = { _, _, _ in },
                scraped: @escaping @Sendable (_ lines: Int, _ bytes: Int, _ reports: Int) -> Void = { _, _, _ in }) {
        self.suggestion = suggestion
        self.scraped = scraped
    }

    /// Tells nobody.
    public static let none = EngineObserver()
}
