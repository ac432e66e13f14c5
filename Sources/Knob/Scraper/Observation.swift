import Store

/// Reduces a trial's reports to Katib's observation: per metric its min, max and latest value.
public struct ObservationBuilder: Sendable {
    private var summaries: [String: MetricSummary] = [:]
    /// Reports so far per metric (numeric or not), for numbering steps.
    private var reportCounts: [String: Int] = [:]
    private let order: [String]

    public init(metricNames: [String]) {
        order = metricNames
    }

    /// A builder that has seen a trial's stored reports already, as they were read.
    public init(metricNames: [String], replaying records: [MetricRecord]) {
        self.init(metricNames: metricNames)
        for record in records {
            add(MetricReport(name: record.name, value: record.value, text: record.text, step: record.step))
        }
    }

    /// Adds a report and returns the step it gets: the one it named, else its number among this
    /// metric's reports (1, 2, …).
    @discardableResult
    public mutating func add(_ report: MetricReport) -> Int {
        let count = (reportCounts[report.name] ?? 0) + 1
        reportCounts[report.name] = count
        if let value = report.value {
            if var summary = summaries[report.name] {
                summary.min = Swift.min(summary.min, value)
                summary.max = Swift.max(summary.max, value)
                summary.latest = value
                summary.count += 1
                summaries[report.name] = summary
            } else {
                summaries[report.name] = MetricSummary(name: report.name, min: value, max: value, latest: value, count: 1)
            }
        }
        return report.step ?? count
    }

    /// The summaries, in the spec's metric order.
    public var metrics: [MetricSummary] {
        order.compactMap { summaries[$0] }
    }

    /// The objective's best value so far (its largest when maximized, else its smallest): what an
    /// early-stopped trial counts with, as Katib gives it to the suggesters.
    public func bestValue(of objective: ObjectiveSpec) -> Double? {
        value(of: objective.objectiveMetricName, strategy: objective.type == .maximize ? .max : .min)
    }

    /// The value of `name` as `strategy` picks it.
    public func value(of name: String, strategy: ObjectiveSpec.Strategy) -> Double? {
        guard let summary = summaries[name] else { return nil }
        switch strategy {
        case .min: return summary.min
        case .max: return summary.max
        case .latest: return summary.latest
        }
    }
}
