import Foundation
import Hummingbird
import Prometheus
import Store

/// What `GET /metrics` shows, in Prometheus's text format.
///
/// Two kinds of families: those the daemon observes as it serves (the API's request latency), kept in
/// one registry for its lifetime; and those read from the store at each scrape (experiments by status,
/// trials by state, the trial duration histogram, the reports scraped), so that they tell the store's
/// truth whoever ran the experiments (knobd or `knob run`) and survive a restart of knobd.
public final class DaemonMetrics: Sendable {
    /// Upper bounds of the request latency buckets, in seconds.
    static let requestBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// Upper bounds of the trial duration buckets, in seconds (a second to a day).
    static let trialBuckets: [Double] = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400]

    private let registry = PrometheusCollectorRegistry()

    public init() {}

    /// The methods a request is labelled with; any other is `other`, so that a client inventing methods
    /// cannot make the registry grow without bound (routes are patterns and statuses few, for the same reason).
    static let labelledMethods: Set<HTTPRequest.Method> = [.get, .head, .post, .put, .patch, .delete, .options]

    /// Records one answered request: its route pattern (`/v1/experiments/{name}`), method and status.
    func recordRequest(route: String, method: HTTPRequest.Method, status: HTTPResponse.Status, seconds: Double) {
        let method = Self.labelledMethods.contains(method) ? method.rawValue : "other"
        registry.makeValueHistogram(
            name: "knob_api_request_duration_seconds",
            labels: [("route", route), ("method", method), ("status", String(status.code))],
            buckets: Self.requestBuckets,
            help: "Time knobd took to answer an API request (until the answer's head), by route pattern, method and status"
        ).record(seconds)
    }

    /// The whole exposition: the families read from the store now, then the daemon's own.
    func exposition(store: Store) async throws -> String {
        let snapshot = PrometheusCollectorRegistry()
        let experiments = try await store.experiments()
        var byStatus: [ExperimentStatus: Int] = [:]
        var byState: [TrialState: Int] = [:]
        var reports = 0
        let durations = snapshot.makeValueHistogram(
            name: "knob_trial_duration_seconds", labels: [], buckets: Self.trialBuckets,
            help: "Wall time of the finished trials in the store, from start to end")
        for experiment in experiments {
            byStatus[experiment.status, default: 0] += 1
            for trial in try await store.trials(of: experiment.id!) {
                byState[trial.state, default: 0] += 1
                reports += trial.observation.reduce(0) { $0 + $1.count }
                if trial.state.isFinished, let started = trial.startedAt, let ended = trial.completedAt {
                    durations.record(max(0, ended.timeIntervalSince(started)))
                }
            }
        }
        for status in ExperimentStatus.allCases {
            snapshot.makeGauge(name: "knob_experiments", labels: [("status", status.rawValue)],
                               help: "Experiments in the store, by status").set(to: Double(byStatus[status] ?? 0))
        }
        for state in TrialState.allCases {
            snapshot.makeGauge(name: "knob_trials", labels: [("state", state.rawValue)],
                               help: "Trials in the store, by state").set(to: Double(byState[state] ?? 0))
        }
        snapshot.makeGauge(name: "knob_trial_reports", labels: [],
                           help: "Metric reports scraped from the trials' output and kept in the store").set(to: Double(reports))
        return snapshot.emitToString() + registry.emitToString()
    }
}

/// Times every request into `DaemonMetrics`, labelled by the route it matched ("NotFound" when none).
/// Added before the error middleware, it sees the status an error becomes.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: DaemonMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        func record(_ status: HTTPResponse.Status) {
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            metrics.recordRequest(route: Self.pattern(context.endpointPath), method: request.method, status: status, seconds: seconds)
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
