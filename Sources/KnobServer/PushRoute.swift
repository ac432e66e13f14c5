import Foundation
import Hummingbird
import Knob
import Logging
import NIOCore
import Store

/// `POST /v1/experiments/{name}/trials/{trial}/metrics`: a trial of a Push experiment sends a report
/// (`{"accuracy": 0.97, "step": 3}`) with its own token (`Authorization: Bearer $KNOB_PUSH_TOKEN`).
/// The report is checked and appended to the trial's pushed-reports file, which the trial's execution
/// reads as it reads a File collector's: observations, early stopping and restarts work as for the
/// other collectors. The daemon's own token is not asked for (the trial's is), so that a pod can push
/// through the TCP listener without holding the key to the whole API.
struct PushRoute: Sendable {
    /// The largest report accepted.
    static let maxBodyBytes = 64 << 10

    let store: Store
    let home: KnobHome

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.post("/v1/experiments/:name/trials/:trial/metrics") { request, context in try await push(request, context: context) }
    }

    /// Whether the request is a push, which carries a trial's token rather than the daemon's.
    static func isPush(_ request: Request) -> Bool {
        guard request.method == .post else { return false }
        let segments = request.uri.path.split(separator: "/", omittingEmptySubsequences: false)
        return segments.count == 7 && segments[0].isEmpty && segments[1] == "v1" && segments[2] == "experiments"
            && !segments[3].isEmpty && segments[4] == "trials" && !segments[5].isEmpty && segments[6] == "metrics"
    }

    /// What a push answers: the metrics taken, and the names that are no metric of the experiment.
    struct Accepted: Encodable {
        var trial: String
        var accepted: [String]
        var ignored: [String]
        var step: Int?
    }

    private func push(_ request: Request, context: some RequestContext) async throws -> Response {
        guard let credentials = BearerTokenMiddleware<BasicRequestContext>.bearerCredentials(request.headers[.authorization] ?? "") else {
            throw APIError(.unauthorized, code: "Unauthorized",
                           "a pushed report needs the trial's token: send Authorization: Bearer $KNOB_PUSH_TOKEN (knob gives it to each trial of a Push experiment)",
                           headers: [.wwwAuthenticate: "Bearer"])
        }
        let name = try context.parameters.require("name")
        if let problem = dns1123LabelProblem(name) { throw APIError(.badRequest, code: "BadRequest", "experiment name: \(problem)") }
        let experiment = try await store.requireExperiment(name)
        let trialName = try context.parameters.require("trial")
        guard let trial = try await store.trial(named: trialName), trial.experimentId == experiment.id else {
            throw APIError(.notFound, code: "NotFound", "experiment \(experiment.name) has no trial named \(trialName)")
        }
        let channel = PushChannel(trialDirectory: home.trialDirectory(experiment: experiment.name, trial: trial.name))
        guard let token = channel.existingToken() else {
            throw APIError(.forbidden, code: "Forbidden",
                           "trial \(trial.name) takes no pushed reports: its experiment's metrics collector is not Push, or the trial has not been started")
        }
        guard constantTimeEqual(Array(credentials.utf8), Array(token.utf8)) else {
            throw APIError(.forbidden, code: "Forbidden",
                           "the token is not trial \(trial.name)'s: each trial pushes with its own KNOB_PUSH_TOKEN")
        }
        if trial.state.isFinished { throw Self.ended(trial.name, state: trial.state.rawValue) }
        let spec = try experiment.parsedSpec()

        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: Self.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, code: "TooLarge", "a pushed report is at most \(Self.maxBodyBytes / 1024) KiB")
        }
        let report: PushedReport
        do {
            report = try PushedReport(json: Data(body.readableBytesView), metricNames: spec.metricNames)
        } catch .malformed(let message) {
            throw APIError(.badRequest, code: "BadRequest", message)
        } catch .invalid(let message) {
            throw APIError(.unprocessableContent, code: "InvalidReport", message)
        }
        do {
            try channel.append(report.line)
        } catch .closed {
            let state = (try? await store.trial(named: trial.name))?.state
            throw Self.ended(trial.name, state: state.map { $0.isFinished ? $0.rawValue : "its process has exited" } ?? "its process has exited")
        } catch .full {
            throw APIError(.contentTooLarge, code: "TooLarge",
                           "trial \(trial.name) has pushed \(PushChannel.maxReportsBytes >> 20) MiB of reports, as much as a trial may")
        } catch .unwritable(let reason) {
            throw APIError(.serviceUnavailable, code: "StoreUnavailable", "the report could not be kept (\(reason)); try again")
        }
        return try json(Accepted(trial: trial.name, accepted: report.values.keys.sorted(), ignored: report.ignored, step: report.step),
                        status: .accepted)
    }

    private static func ended(_ trial: String, state: String) -> APIError {
        APIError(.conflict, code: "TrialEnded", "trial \(trial) has ended (\(state)): its reports are no longer taken")
    }
}

/// Serves only the push route on a Unix socket (mode 0600), for `knob run`, whose trials have no
/// knobd to push to: runs until cancelled; `onReady` is called once the socket is bound.
public func servePushReports(store: Store, home: KnobHome, socketPath: String, onReady: @escaping @Sendable () -> Void) async throws {
    // sun_path holds 108 bytes with its terminating NUL.
    guard socketPath.utf8.count < 108 else {
        throw KnobError.cannotRead(path: socketPath, reason: "the path is too long for a Unix socket (\(socketPath.utf8.count) bytes, at most 107): "
                                   + "give knob a shorter --home")
    }
    var logger = Logger(label: "knob-push")
    logger.logLevel = .critical
    let served = Router()
    PushRoute(store: store, home: home).addRoutes(to: served)
    let router = Router()
    router.add(middleware: ErrorMiddleware(logger: logger, routes: RouteTable(served.routes)))
    PushRoute(store: store, home: home).addRoutes(to: router)
    unlink(socketPath)
    let application = Application(
        router: router,
        configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: "knob"),
        onServerRunning: { _ in
            chmod(socketPath, 0o600)
            onReady()
        },
        logger: logger)
    defer { unlink(socketPath) }
    try await application.run()
}
