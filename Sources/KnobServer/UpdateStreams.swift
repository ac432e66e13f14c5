import Foundation
import Hummingbird
import Knob
import KnobAlgorithms
import NIOCore
import ServiceLifecycle
import Store
import Synchronization

/// The dashboard's live updates as Server-Sent Events: `GET /v1/streams/experiments` (the experiments
/// list) and `GET /v1/streams/experiments/{name}` (one experiment, or one of its trials with `trial`).
///
/// A client that accepts `text/event-stream` (a browser's `EventSource`) is followed: the stream stays
/// open and sends what changes, with heartbeat comments, until the experiment has ended and every
/// trial with it, the client goes away, or knobd shuts down. Any other client gets what is there now
/// and the end of the answer. At most `maxStreams` followed streams are open at once; beyond, 503.
///
/// The changes may be written by another process (`knob run` on the same store), so they are read
/// from the store: one poll at a time per experiment for every stream that follows it (`SharedPoll`),
/// and only after SQLite's `data_version` says something was committed.
final class UpdateStreams: Sendable {
    static let defaultMaxStreams = 32

    let store: Store
    let maxStreams: Int
    /// How often a followed experiment's store is looked at.
    let pollInterval: Duration
    /// The longest a stream stays silent: a comment then keeps proxies from closing it and finds out
    /// whether its client is gone.
    let heartbeat: Duration
    private let probe: StoreChangeProbe?
    private let state = Mutex(Registry())

    private struct Registry {
        var open = 0
        var experiments: [Int64: (feed: ExperimentFeed, streams: Int)] = [:]
        var list: (feed: ListFeed, streams: Int)?
    }

    init(store: Store, maxStreams: Int = UpdateStreams.defaultMaxStreams, pollInterval: Duration = .milliseconds(500),
         heartbeat: Duration = .seconds(15)) {
        self.store = store
        self.maxStreams = maxStreams
        self.pollInterval = pollInterval
        self.heartbeat = heartbeat
        probe = try? StoreChangeProbe(store)
    }

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get("/v1/streams/experiments") { request, _ in try await self.listStream(request) }
        router.get("/v1/streams/experiments/:name") { request, context in try await self.experimentStream(request, context: context) }
    }

    // MARK: Answers

    /// How long a browser waits before reconnecting a dropped stream.
    static let retryMilliseconds = 3000

    private func headers() -> HTTPFields {
        [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache"]
    }

    private static func follows(_ request: Request) -> Bool {
        request.headers[values: .accept].contains { $0.lowercased().contains("text/event-stream") }
    }

    private func experimentStream(_ request: Request, context: some RequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        if let problem = dns1123LabelProblem(name) { throw APIError(.badRequest, code: "BadRequest", "experiment name: \(problem)") }
        let experiment = try await store.requireExperiment(name)
        var trial: TrialRecord?
        if let trialName = request.uri.queryParameters.get("trial") {
            guard let found = try await store.trial(named: trialName), found.experimentId == experiment.id else {
                throw APIError(.notFound, code: "NotFound", "experiment \(name) has no trial named \(trialName.prefix(80))")
            }
            trial = found
        }
        let resume = try Self.resumeCursor(request)
        let ticket = Self.follows(request) ? try open(experiment: experiment, from: try await store.changeCursor()) : nil
        let stream = ExperimentStream(streams: self, experiment: experiment, trial: trial, ticket: ticket)
        return Response(status: .ok, headers: headers(), body: ResponseBody { writer in
            try await stream.run(from: resume, writer: &writer)
            try await writer.finish(nil)
        })
    }

    static let lastEventID = HTTPFields.Element.Name("Last-Event-ID")!

    /// Where a reconnecting client was: its `Last-Event-ID` (or `since`), nil when it gives none.
    private static func resumeCursor(_ request: Request) throws -> ChangeCursor? {
        guard let text = request.headers[lastEventID] ?? request.uri.queryParameters.get("since") else { return nil }
        guard let cursor = ChangeCursor(text) else {
            throw APIError(.badRequest, code: "BadRequest",
                           "Last-Event-ID \"\(text.prefix(40))\" is not an id this stream sent (three whole numbers joined by -, e.g. 12-340-56)")
        }
        return cursor
    }

    private func listStream(_ request: Request) async throws -> Response {
        let ticket = Self.follows(request) ? try openList() : nil
        let store = self.store
        let heartbeat = self.heartbeat
        return Response(status: .ok, headers: headers(), body: ResponseBody { writer in
            // The feed's place before the first read: its later steps hold whatever that read missed.
            var revision = await ticket?.list?.poll.revision ?? 0
            var sent = try await ListFeed.read(store)
            try await writer.write(SSE.message("experiments", data: sent.data, retry: Self.retryMilliseconds))
            guard let ticket, let feed = ticket.list else { return try await writer.finish(nil) }
            var silentSince = ContinuousClock.now
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let news = try await feed.poll.steps(after: revision)
                revision = news.revision
                var latest = news.steps?.last
                if news.steps == nil { latest = try await ListFeed.read(store) }
                if let latest, latest.data != sent.data {
                    sent = latest
                    try await writer.write(SSE.message("experiments", data: sent.data))
                    silentSince = .now
                } else if ContinuousClock.now - silentSince >= heartbeat {
                    try await writer.write(SSE.comment("keep-alive"))
                    silentSince = .now
                }
            }
            try await writer.finish(nil)
        })
    }

    // MARK: Streams and their feeds

    /// A followed stream's place among the open ones; gives it back when the stream's answer is dropped.
    final class Ticket: Sendable {
        let streams: UpdateStreams
        let experimentId: Int64?
        let feed: ExperimentFeed?
        let list: ListFeed?

        init(streams: UpdateStreams, experimentId: Int64?, feed: ExperimentFeed?, list: ListFeed?) {
            self.streams = streams
            self.experimentId = experimentId
            self.feed = feed
            self.list = list
        }

        deinit { streams.close(experimentId: experimentId, list: list != nil) }
    }

    private func tooMany() -> APIError {
        APIError(.serviceUnavailable, code: "TooManyStreams",
                 "knobd already serves \(maxStreams) update streams, as many as it allows at once; close a dashboard page (or another client of /v1/streams) and retry",
                 headers: [.retryAfter: "10"])
    }

    /// A followed stream of the experiment; a feed started for it reads changes after `cursor`.
    private func open(experiment: ExperimentRecord, from cursor: ChangeCursor) throws -> Ticket {
        let id = experiment.id!
        let feed: ExperimentFeed? = state.withLock { registry in
            guard registry.open < maxStreams else { return nil }
            registry.open += 1
            if let entry = registry.experiments[id] {
                registry.experiments[id] = (entry.feed, entry.streams + 1)
                return entry.feed
            }
            let feed = ExperimentFeed(store: store, experimentId: id, name: experiment.name, from: cursor, probe: probe, interval: pollInterval)
            registry.experiments[id] = (feed, 1)
            return feed
        }
        guard let feed else { throw tooMany() }
        return Ticket(streams: self, experimentId: id, feed: feed, list: nil)
    }

    private func openList() throws -> Ticket {
        let feed: ListFeed? = state.withLock { registry in
            guard registry.open < maxStreams else { return nil }
            registry.open += 1
            let feed = registry.list?.feed ?? ListFeed(store: store, probe: probe, interval: pollInterval)
            registry.list = (feed, (registry.list?.streams ?? 0) + 1)
            return feed
        }
        guard let feed else { throw tooMany() }
        return Ticket(streams: self, experimentId: nil, feed: nil, list: feed)
    }

    fileprivate func close(experimentId: Int64?, list: Bool) {
        state.withLock { registry in
            registry.open -= 1
            if let experimentId, let entry = registry.experiments[experimentId] {
                registry.experiments[experimentId] = entry.streams > 1 ? (entry.feed, entry.streams - 1) : nil
            }
            if list, let entry = registry.list {
                registry.list = entry.streams > 1 ? (entry.feed, entry.streams - 1) : nil
            }
        }
    }

    /// How many followed streams are open (for tests).
    var openStreams: Int { state.withLock { $0.open } }
}

// MARK: What the streams send

/// A parameter of the experiment's search space as the dashboard draws it.
struct ParameterView: Encodable, Sendable {
    var name: String
    /// `double`, `int`, `discrete` or `categorical`.
    var type: String
    /// `linear` or `log`, for numbers.
    var scale: String
    var min: Double?
    var max: Double?
    /// The values of a list, in the spec's order.
    var values: [String]?

    init(_ parameter: Parameter) {
        name = parameter.name
        scale = "linear"
        switch parameter.kind {
        case .double(let min, let max, _, let scale):
            (self.type, self.min, self.max, self.scale) = ("double", min, max, scale.rawValue)
        case .int(let min, let max, _, let scale):
            (self.type, self.min, self.max, self.scale) = ("int", Double(min), Double(max), scale.rawValue)
        case .discrete(let values):
            (self.type, self.values) = ("discrete", values)
        case .categorical(let values):
            (self.type, self.values) = ("categorical", values)
        }
    }
}

/// A trial as the pages show it: what `GET …/trials` gives but for what finds its process, its log and
/// its suggester's notes, which no page shows (an experiment of 10,000 trials sends a third less).
struct TrialView: Encodable {
    var name: String
    var sequence: Int
    var state: TrialState
    var reason: String
    var message: String
    var assignments: [ParameterAssignment]
    var observation: [MetricSummary]
    var objectiveValue: Double?
    var exitCode: Int?
    var startedAt: Date?
    var completedAt: Date?

    init(_ trial: TrialRecord) {
        (name, sequence, state, reason, message) = (trial.name, trial.sequence, trial.state, trial.reason, trial.message)
        (assignments, observation, objectiveValue, exitCode) = (trial.assignments, trial.observation, trial.objectiveValue, trial.exitCode)
        (startedAt, completedAt) = (trial.startedAt, trial.completedAt)
    }
}

/// What changed: trials new or changed (each whole), new reports, and the experiment when it changed.
struct Delta: Encodable {
    var experiment: ExperimentView?
    var trials: [TrialView]
    var reports: [StoredReport]
}

/// Server-Sent Events' wire format (the data is one line of JSON: JSON text has no raw newlines).
enum SSE {
    static func message(_ event: String, id: String? = nil, data: Data, retry: Int? = nil) -> ByteBuffer {
        var text = ""
        if let retry { text += "retry: \(retry)\n" }
        if let id { text += "id: \(id)\n" }
        text += "event: \(event)\ndata: "
        var buffer = ByteBuffer(string: text)
        buffer.writeBytes(data)
        buffer.writeString("\n\n")
        return buffer
    }

    static func message(_ event: String, id: String? = nil, _ value: some Encodable, retry: Int? = nil) throws -> ByteBuffer {
        message(event, id: id, data: try APIJSON.encoder.encode(value), retry: retry)
    }

    static func comment(_ text: String) -> ByteBuffer {
        ByteBuffer(string: ": \(text)\n\n")
    }
}

/// The first message of a stream, `{"experiment", "parameters", "trials", "reports"}`, written out directly: its trials' lists as the store holds them (JSON already),
/// with no decoding and encoding of each trial, which would cost more than a second for 10,000.
/// The same fields and values as `TrialView` and `StoredReport` give through `JSONEncoder`.
enum SnapshotJSON {
    static func encode(experiment: ExperimentView, parameters: [ParameterView], trials: [TrialRow], reports: [StoredReport]) throws -> Data {
        var out = "{\"experiment\":"
        out += String(decoding: try APIJSON.encoder.encode(experiment), as: UTF8.self)
        out += ",\"parameters\":"
        out += String(decoding: try APIJSON.encoder.encode(parameters), as: UTF8.self)
        out += ",\"reports\":["
        for (index, report) in reports.enumerated() {
            if index > 0 { out += "," }
            out += "{\"id\":\(report.id),\"name\":"
            string(report.name, to: &out)
            out += ",\"step\":\(report.step),\"trialName\":"
            string(report.trialName, to: &out)
            out += ",\"value\":\(number(report.value))}"
        }
        out += "],\"trials\":["
        for (index, trial) in trials.enumerated() {
            if index > 0 { out += "," }
            out += "{\"assignments\":\(trial.assignmentsJSON)"
            if let time = trial.completedAt.flatMap(iso8601) { out += ",\"completedAt\":\"\(time)\"" }
            if let code = trial.exitCode { out += ",\"exitCode\":\(code)" }
            out += ",\"message\":"
            string(trial.message, to: &out)
            out += ",\"name\":"
            string(trial.name, to: &out)
            if let value = trial.objectiveValue, value.isFinite { out += ",\"objectiveValue\":\(number(value))" }
            out += ",\"observation\":\(trial.observationJSON),\"reason\":"
            string(trial.reason, to: &out)
            out += ",\"sequence\":\(trial.sequence)"
            if let time = trial.startedAt.flatMap(iso8601) { out += ",\"startedAt\":\"\(time)\"" }
            out += ",\"state\":"
            string(trial.state, to: &out)
            out += "}"
        }
        out += "]}"
        return Data(out.utf8)
    }

    /// A JSON string: quotes, backslashes and control characters escaped.
    static func string(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// A finite number as JSON reads it (Swift's shortest form that reads back the same).
    static func number(_ value: Double) -> String {
        value.isFinite ? "\(value)" : "null"
    }

    /// A stored time (`yyyy-MM-dd HH:mm:ss.SSS`, UTC) as the API writes times: `yyyy-MM-ddTHH:mm:ssZ`.
    static func iso8601(_ stored: String) -> String? {
        let characters = Array(stored.utf8)
        guard characters.count >= 19, characters[10] == UInt8(ascii: " ") else { return nil }
        return String(decoding: characters[0..<10], as: UTF8.self) + "T" + String(decoding: characters[11..<19], as: UTF8.self) + "Z"
    }
}

// MARK: Feeds

/// One poll of the store at a time for every stream that follows the same thing. The first stream
/// that needs news polls, at most once per interval and only when the store was written; the others
/// wait for its result. Each poll that finds something is a step; the latest steps are kept, so a
/// stream that fell behind catches up from them.
actor SharedPoll<State: Sendable, Step: Sendable> {
    private static var kept: Int { 64 }

    private var state: State
    private let read: @Sendable (inout State) async throws -> Step?
    private let probe: StoreChangeProbe?
    private let interval: Duration
    private var version: Int?
    private var polling = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var lastPoll = ContinuousClock.now
    /// The number of steps so far.
    private(set) var revision = 0
    private var recent: [(revision: Int, step: Step)] = []

    init(state: State, probe: StoreChangeProbe?, interval: Duration, read: @escaping @Sendable (inout State) async throws -> Step?) {
        self.state = state
        self.probe = probe
        self.interval = interval
        self.read = read
    }

    /// The steps after `revision` (once the next poll has ended when there are none yet) and the
    /// revision they go up to: empty when that poll found nothing; nil when `revision` is older than
    /// the steps kept (read the store).
    func steps(after revision: Int) async throws -> (steps: [Step]?, revision: Int) {
        if revision >= self.revision {
            if polling {
                await withCheckedContinuation { waiters.append($0) }
            } else {
                polling = true
                defer {
                    polling = false
                    for waiter in waiters { waiter.resume() }
                    waiters = []
                }
                try await Task.sleep(until: lastPoll.advanced(by: interval), clock: .continuous)
                try await poll()
                lastPoll = .now
            }
        }
        try Task.checkCancellation()
        guard revision < self.revision else { return ([], self.revision) }
        guard let first = recent.first, first.revision <= revision + 1 else { return (nil, self.revision) }
        return (recent.filter { $0.revision > revision }.map(\.step), self.revision)
    }

    private func poll() async throws {
        let now = try await probe?.version()
        if let now, now == version { return }
        var state = self.state
        let step = try await read(&state)
        self.state = state
        version = now
        guard let step else { return }
        revision += 1
        recent.append((revision, step))
        if recent.count > Self.kept { recent.removeFirst(recent.count - Self.kept) }
    }
}

/// What one poll of an experiment found.
struct ExperimentStep: Sendable {
    var changes: ExperimentChanges
    var view: ExperimentView?
    /// The experiment is gone (deleted).
    var gone = false
}

/// The shared poll of one experiment's changes.
final class ExperimentFeed: Sendable {
    let poll: SharedPoll<ChangeCursor, ExperimentStep>

    /// A feed of the changes after `cursor`: its streams read what came before themselves, after it started.
    init(store: Store, experimentId: Int64, name: String, from cursor: ChangeCursor, probe: StoreChangeProbe?, interval: Duration) {
        poll = SharedPoll(state: cursor, probe: probe, interval: interval) { cursor in
            let step = try await ExperimentFeed.read(store: store, experimentId: experimentId, name: name, since: cursor)
            if let step { cursor = step.changes.cursor }
            return step
        }
    }

    /// What changed after `cursor`, or nil when nothing of the experiment did (unless `always`). The
    /// experiment is read after its changes, so its status is at least as new as they are.
    static func read(store: Store, experimentId: Int64, name: String, since cursor: ChangeCursor, metric: String? = nil,
                     trialId: Int64? = nil, always: Bool = false) async throws -> ExperimentStep? {
        let changes = try await store.changes(of: experimentId, since: cursor, metric: metric, trialId: trialId)
        guard let record = try await store.experiment(named: name), record.id == experimentId else {
            return ExperimentStep(changes: changes, view: nil, gone: true)
        }
        guard always || !changes.isEmpty else { return nil }
        return ExperimentStep(changes: changes, view: try await ExperimentView.load(record, store: store, events: 20))
    }
}

/// The shared poll of the experiments list.
final class ListFeed: Sendable {
    struct Listing: Sendable {
        var data: Data
    }

    let poll: SharedPoll<Data, Listing>

    init(store: Store, probe: StoreChangeProbe?, interval: Duration) {
        poll = SharedPoll(state: Data(), probe: probe, interval: interval) { last in
            let listing = try await ListFeed.read(store)
            guard listing.data != last else { return nil }
            last = listing.data
            return listing
        }
    }

    /// Every experiment, newest first, as `GET /v1/experiments` gives them.
    static func read(_ store: Store) async throws -> Listing {
        var views: [ExperimentView] = []
        for experiment in try await store.experiments() { views.append(try await ExperimentView.load(experiment, store: store)) }
        return Listing(data: try APIJSON.encoder.encode(views))
    }
}

// MARK: One experiment's stream

/// One client's stream of an experiment (or of one of its trials).
struct ExperimentStream: Sendable {
    let streams: UpdateStreams
    let experiment: ExperimentRecord
    let trial: TrialRecord?
    let ticket: UpdateStreams.Ticket?

    private var store: Store { streams.store }
    /// The experiment's page plots the objective's reports; a trial's page all of the trial's.
    private var metric: String? { trial == nil ? experiment.objectiveMetricName : nil }

    func run(from resume: ChangeCursor?, writer: inout any ResponseBodyWriter) async throws {
        // The feed's place before the first read: its later steps hold whatever that read missed.
        var revision = await ticket?.feed?.poll.revision ?? 0
        var cursor: ChangeCursor
        var trialState: TrialState?
        if let resume {
            let first = try await read(since: resume, always: true)!
            try await writer.write(try message(first, after: resume))
            cursor = first.changes.cursor
            trialState = first.changes.trials.last { $0.id == trial?.id }?.state
            if let reason = ending(first.view, trialState: trialState, gone: first.gone) {
                return try await writer.write(SSE.message("end", ["reason": reason]))
            }
        } else {
            let snapshot = try await store.snapshot(of: experiment.id!, metric: metric, trialId: trial?.id)
            guard let record = try await store.experiment(named: experiment.name), record.id == experiment.id else {
                return try await writer.write(SSE.message("end", ["reason": "deleted"]))
            }
            let view = try await ExperimentView.load(record, store: store, events: 20)
            let parameters = try record.parsedSpec().parameters.map { ParameterView($0.parameter) }
            try await writer.write(SSE.message("snapshot", id: snapshot.cursor.description,
                                               data: try SnapshotJSON.encode(experiment: view, parameters: parameters, trials: snapshot.trials,
                                                                             reports: snapshot.reports),
                                               retry: UpdateStreams.retryMilliseconds))
            cursor = snapshot.cursor
            trialState = trial == nil ? nil : snapshot.trials.first.flatMap { TrialState(rawValue: $0.state) }
            if let reason = ending(view, trialState: trialState, gone: false) {
                return try await writer.write(SSE.message("end", ["reason": reason]))
            }
        }
        guard let feed = ticket?.feed else { return }
        var silentSince = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let news = try await feed.poll.steps(after: revision)
            revision = news.revision
            let step: ExperimentStep?
            if let steps = news.steps {
                step = merge(steps, after: cursor)
            } else {
                // Fallen behind the steps kept: read the store from where this stream is (after the
                // revision was taken, so the steps after it hold whatever this read misses).
                step = try await read(since: cursor)
            }
            guard let step else {
                if ContinuousClock.now - silentSince >= streams.heartbeat {
                    try await writer.write(SSE.comment("keep-alive"))
                    silentSince = .now
                }
                continue
            }
            if !step.gone {
                try await writer.write(try message(step, after: cursor))
                silentSince = .now
            }
            cursor = step.changes.cursor
            trialState = step.changes.trials.last { $0.id == trial?.id }?.state ?? trialState
            if let reason = ending(step.view, trialState: trialState, gone: step.gone) {
                return try await writer.write(SSE.message("end", ["reason": reason]))
            }
        }
    }

    private func read(since cursor: ChangeCursor, always: Bool = false) async throws -> ExperimentStep? {
        try await ExperimentFeed.read(store: store, experimentId: experiment.id!, name: experiment.name, since: cursor,
                                      metric: metric, trialId: trial?.id, always: always)
    }

    /// The steps as one, with only what this stream follows and has not been sent.
    private func merge(_ steps: [ExperimentStep], after cursor: ChangeCursor) -> ExperimentStep? {
        guard let last = steps.last else { return nil }
        var trials: [String: TrialRecord] = [:]
        var reports: [StoredReport] = []
        for step in steps {
            for trial in step.changes.trials where self.trial == nil || trial.id == self.trial?.id { trials[trial.name] = trial }
            reports += step.changes.reports.filter { report in
                report.id > cursor.metric && (metric == nil || report.name == metric) && (trial == nil || report.trialName == trial?.name)
            }
        }
        let newest = last.changes.cursor
        let changes = ExperimentChanges(
            trials: trials.values.sorted { $0.sequence < $1.sequence }, reports: reports, logged: steps.contains { $0.changes.logged },
            cursor: ChangeCursor(event: max(cursor.event, newest.event), metric: max(cursor.metric, newest.metric), trial: max(cursor.trial, newest.trial)))
        if trial != nil, changes.trials.isEmpty, changes.reports.isEmpty, !last.gone { return nil }
        return ExperimentStep(changes: changes, view: steps.compactMap(\.view).last, gone: last.gone)
    }

    private func message(_ step: ExperimentStep, after cursor: ChangeCursor) throws -> ByteBuffer {
        try SSE.message("delta", id: step.changes.cursor.description,
                        Delta(experiment: step.view, trials: step.changes.trials.map(TrialView.init), reports: step.changes.reports))
    }

    /// Why the stream ends here, if it does: the experiment is gone, or it has ended with every trial
    /// (a trial's stream: the trial has ended).
    private func ending(_ view: ExperimentView?, trialState: TrialState?, gone: Bool) -> String? {
        if gone { return "deleted" }
        if trial != nil { return trialState?.isFinished == true ? "finished" : nil }
        guard let view, let status = ExperimentStatus(rawValue: view.status), status.isFinished else { return nil }
        let unfinished = view.trials.filter { TrialState(rawValue: $0.key).map { !$0.isFinished } ?? false }.map(\.value).reduce(0, +)
        return unfinished == 0 ? "finished" : nil
    }
}
