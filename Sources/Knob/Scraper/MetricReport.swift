import Foundation

/// One `name=value` report read from a trial's output.
public struct MetricReport: Sendable, Hashable {
    public var name: String
    /// The value, when it was a number.
    public var value: Double?
    /// The value as written, when it was not a number (kept, but ignored by the optimizer).
    public var text: String?
    /// The time the line carried (a leading RFC 3339 stamp, or a JSON `timestamp`).
    public var timestamp: Date?
    /// The step the line named (JSON `step`, `epoch` or `global_step`).
    public var step: Int?

    public init(name: String, value: Double?, text: String? = nil, timestamp: Date? = nil, step: Int? = nil) {
        self.name = name
        self.value = value
        self.text = text
        self.timestamp = timestamp
        self.step = step
    }
}
