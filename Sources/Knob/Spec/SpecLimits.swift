/// The numbers that bound the work one spec may ask of knob. Spec validation rejects anything
/// over them, so that no spec, however hostile, can make `knob` or `knobd` trap, hang or run out
/// of memory. knobd's flags change `maxParallelTrialCount`; the others are fixed and documented.
public struct SpecLimits: Sendable, Hashable {
    /// Trials run at once (`spec.parallelTrialCount`, and a budget edit's).
    public var maxParallelTrialCount: Int = 64
    /// `spec.maxTrialCount` and `spec.maxFailedTrialCount`.
    public var maxTrialCount: Int = 1_000_000
    /// Entries of `spec.parameters`.
    public var maxParameters: Int = 1_000
    /// Values of one discrete or categorical parameter.
    public var maxListValues: Int = 10_000
    /// Points of a `grid` search (the product of the parameters' value counts), and values of one
    /// parameter with a `step`.
    public var maxGridPoints: Int = 10_000_000
    /// `trialTemplate.timeoutSeconds`: a year.
    public var maxTimeoutSeconds: Double = 366 * 24 * 3600
    /// Nodes of a document after its YAML aliases are expanded (a "billion laughs" stops here).
    public var maxDocumentNodes: Int = 200_000

    /// The largest magnitude of an int parameter's bounds and step: 2^53, so that every value is
    /// exact as a Double, as the suggesters hold it.
    public static let maxIntegerMagnitude = 1 << 53

    public init() {}

    public static let `default` = SpecLimits()
}
