import Foundation
import Hummingbird
import Knob
import Prometheus
import Store

/// What `GET /metrics` shows, in Prometheus's text format.
///
/// Two kinds of families: those read from the store at each scrape (experiments by status, trials by
/// state, the trial duration histogram, the reports kept), so that they tell the store's truth whoever
/// ran the experiments (knobd or `knob run`) and survive a restart of knobd; and those this daemon
/// observes as it works (API request latency, suggestion time, output scraped, store transaction
/// time), kept in one registry for its lifetime. No family is labelled by experiment or trial: their
/// number grows without bound, and so would every scrape.
public final class DaemonMetrics: Sendable {
    /// Upper bounds of the request latency buckets, in seconds.
    static let requestBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// Upper bounds of the trial duration buckets, in seconds (a second to a day).
    static let trialBuckets: [Double] = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400]
    /// Upper bounds of the suggestion time buckets, in seconds (a grid's microseconds to a GP's minute).
    static let suggestionBuckets: [Double] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    /// Upper bounds of the store transaction buckets, in seconds.
    static let transactionBuckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5]

    private let registry = PrometheusCollectorRegistry()
    private let scrapedLines: Counter
    private let scrapedBytes: Counter
    private let scrapedReports: Counter
    private let transactions: [StoreTransactionKind: ValueHistogram]

    public init() {
        scrapedLines = registry.makeCounter(descriptor: MetricNameDescriptor(
            namespace: "knob", metricName: "scraped_lines", unitName: "total",
            helpText: "Lines of trial output (or metrics files) read by this knobd's scraper"))
        scrapedBytes = registry.makeCounter(descriptor: MetricNameDescriptor(
            namespace: "knob", metricName: "scraped_bytes", unitName: "total",
            helpText: "Bytes of trial output (or metrics files) read by this knobd's scraper"))
        scrapedReports = registry.makeCounter(descriptor: MetricNameDescriptor(
            namespace: "knob", metricName: "scraped_reports", unitName: "total",
            helpText: "Metric reports of declared metrics found in trial output (or metrics files) by this knobd's scraper"))
        var transactions: [StoreTransactionKind: ValueHistogram] = [:]
        for kind in StoreTransactionKind.allCases {
            transactions[kind] = registry.makeValueHistogram(
                descriptor: Self.transactionDescriptor, labels: [("kind", kind.rawValue)], buckets: Self.transactionBuckets)
        }
        self.transactions = transactions
    }

    // Descriptors are not Sendable: each use makes its own.
    static var transactionDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "knob", subsystem: "store", metricName: "transaction_duration", unitName: "seconds",
            helpText: "Time of the store's writes made by this knobd, from asking for the writer to the commit of the transaction holding them (writes waiting together share one), by kind")
    }
    static var suggestionDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "knob", metricName: "suggestion_duration", unitName: "seconds",
            helpText: "Time of each call of an experiment's suggester by this knobd, by algorithm")
    }
    static var suggestionsDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "knob", metricName: "suggestions", unitName: "total",
            helpText: "Assignments (new trials) returned by the suggesters of this knobd's experiments, by algorithm")
    }
    static var requestDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "knob", subsystem: "api", metricName: "request_duration", unitName: "seconds",
            helpText: "Time knobd took to answer an API request (until the answer's head), by route pattern, method and status")
    }

    /// What the engine tells: suggestion times and counts by algorithm (a label of a few registered names) and
    /// output read (counted per batch; the counters are looked up once, here).
    public var engineObserver: EngineObserver {
        EngineObserver(
            suggestion: { [registry] algorithm, duration, assignments in
                let labels = [("algorithm", algorithm)]
                registry.makeValueHistogram(descriptor: Self.suggestionDescriptor, labels: labels,
                                            buckets: Self.suggestionBuckets).record(duration.inSeconds)
                registry.makeCounter(descriptor: Self.suggestionsDescriptor, labels: labels).increment(by: Int64(assignments))
            },
            scraped: { [scrapedLines, scrapedBytes, scrapedReports] lines, bytes, reports in
                scrapedLines.increment(by: Int64(lines))
                scrapedBytes.increment(by: Int64(bytes))
                scrapedReports.increment(by: Int64(reports))
            })
    }

    /// What the store tells: each write's time, by kind.
    public var storeObserver: StoreObserver {
        StoreObserver { [transactions] kind, duration in transactions[kind]?.record(duration.inSeconds) }
    }

    /// The methods a request is labelled with; any other is `other`, so that a client inventing methods
    /// cannot make the registry grow without bound (routes are patterns and statuses few, for the same reason).
    static let labelledMethods: Set<HTTPRequest.Method> = [.get, .head, .post, .put, .patch, .delete, .options]

    /// Records one answered request: its route pattern (`/v1/experiments/{name}`), method and status.
    func recordRequest(route: String, method: HTTPRequest.Method, status: HTTPResponse.Status, seconds: Double) {
        let method = Self.labelledMethods.contains(method) ? method.rawValue : "other"
        registry.makeValueHistogram(
            descriptor: Self.requestDescriptor,
            labels: [("route", route), ("method", method), ("status", String(status.code))],
            buckets: Self.requestBuckets
        ).record(seconds)
    }

    /// The whole exposition: the families read from the store now, then the daemon's own.
    func exposition(store: Store) async throws -> String {
        Self.exposition(of: try await store.census(durationBounds: Self.trialBuckets)) + registry.emitToString()
    }

    /// The store's families in Prometheus's text format. Written here rather than through a registry:
    /// the histogram's buckets are counted by the store's query, and a registry's histogram only records
    /// values one at a time.
    static func exposition(of census: StoreCensus) -> String {
        var text = ""
        func family(_ name: String, _ type: String, _ help: String) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        family("knob_experiments", "gauge", "Experiments in the store, by status")
        for status in ExperimentStatus.allCases {
            text += "knob_experiments{status=\"\(status.rawValue)\"} \(census.experiments[status] ?? 0)\n"
        }
        family("knob_trials", "gauge", "Trials in the store, by state")
        for state in TrialState.allCases {
            text += "knob_trials{state=\"\(state.rawValue)\"} \(census.trials[state] ?? 0)\n"
        }
        let durations = census.durations
        family("knob_trial_duration_seconds", "histogram", "Wall time of the finished trials in the store, from start to end")
        for (bound, count) in zip(durations.bounds, durations.cumulativeCounts) {
            text += "knob_trial_duration_seconds_bucket{le=\"\(bound)\"} \(count)\n"
        }
        text += "knob_trial_duration_seconds_bucket{le=\"+Inf\"} \(durations.count)\n"
        text += "knob_trial_duration_seconds_sum \(durations.sum)\n"
        text += "knob_trial_duration_seconds_count \(durations.count)\n"
        family("knob_trial_reports", "gauge", "Metric reports scraped from the trials' output and kept in the store")
        text += "knob_trial_reports \(census.reports)\n"
        return text
    }
}

extension Duration {
    /// The duration in seconds, as Prometheus counts time.
    var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// Times every request into `DaemonMetrics`, labelled by the route it matched ("NotFound" when none).
/// Added before the error middleware, it sees the status an error becomes.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: DaemonMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        func record(_ status: HTTPResponse.Status) {
            metrics.recordRequest(route: Self.pattern(context.endpointPath), method: request.method, status: status,
                                  seconds: (ContinuousClock.now - started).inSeconds)
        }
        do {
            let response = try await next(request, context)
            record(response.status)
            return response
        } catch {
            record((error as? any HTTPResponseError)?.status ?? .internalServerError)
            throw error
        }
    }

    /// `/v1/experiments/:name` as OpenAPI writes it, `/v1/experiments/{name}`.
    static func pattern(_ path: String?) -> String {
        guard let path, path != "NotFound" else { return "NotFound" }
        return "/" + path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
    }
}
