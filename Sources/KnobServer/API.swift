import Foundation
import Hummingbird
import Knob
import Kubernetes
import Store

/// knobd's HTTP/JSON API (documented in `openapi.yaml` at the repository's top).
struct API: Sendable {
    /// The largest request body accepted (a spec is a few KiB).
    static let maxBodyBytes = 1 << 20

    let store: Store
    let home: KnobHome
    let manager: ExperimentManager
    /// What a spec or a budget edit may ask.
    var limits: SpecLimits = .default
    /// What `GET /metrics` shows; shared by the routers of one daemon.
    var metrics = DaemonMetrics()
    /// The cluster Kubernetes trials go to (`nil`: this server runs no trials, as `knob dashboard`).
    var kubernetes: KubernetesOptions? = nil
    /// Where the trials of Push experiments send their reports.
    var push = PushEndpoints()
    /// The read routes' answers while the store is unchanged; shared by the routers of one daemon.
    let cache: ReadCache

    init(store: Store, home: KnobHome, manager: ExperimentManager, limits: SpecLimits = .default, metrics: DaemonMetrics = DaemonMetrics(),
         kubernetes: KubernetesOptions? = nil, push: PushEndpoints = PushEndpoints()) {
        self.store = store
        self.home = home
        self.manager = manager
        self.limits = limits
        self.metrics = metrics
        self.kubernetes = kubernetes
        self.push = push
        cache = ReadCache(store)
    }

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get("/healthz") { _, _ in try json(["status": "ok"]) }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: try await metrics.exposition(store: store))))
        }
        router.get("/v1/cluster") { _, _ in try json(ClusterView(kubernetes)) }
        let v1 = router.group("v1/experiments")
        v1.post { request, context in try await create(request, context: context) }
        v1.get { request, _ in try await list(request) }
        v1.get(":name") { _, context in try await get(context) }
        v1.patch(":name") { request, context in try await edit(request, context: context) }
        v1.delete(":name") { _, context in try await delete(context) }
        v1.post(":name/stop") { _, context in try await stop(context) }
        v1.post(":name/resume") { _, context in try await resume(context) }
        v1.get(":name/spec") { _, context in
            // Exactly as submitted; YAML reads JSON too.
            Response(status: .ok, headers: [.contentType: "application/yaml"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: try await experiment(context).specText)))
        }
        v1.get(":name/optimal") { _, context in
            let name = try experimentName(context)
            return try await cached("optimal/\(name)") {
                let experiment = try await store.requireExperiment(name)
                return .init(body: try encoded(["currentOptimalTrial": OptimalTrial(try await store.optimalTrial(of: experiment))]))
            }
        }
        v1.get(":name/metrics") { request, context in try await reports(request, context: context) }
        v1.get(":name/importances") { request, context in try await importances(request, context: context) }
        v1.get(":name/trials") { request, context in try await trials(request, context: context) }
        v1.get(":name/trials/:trial") { _, context in try json(try await trial(context)) }
        v1.get(":name/trials/:trial/metrics") { _, context in try json(try await store.metrics(ofTrial: try await trial(context).id!)) }
        v1.get(":name/trials/:trial/logs") { request, context in try await logs(request, context: context) }
        v1.get(":name/trials/:trial/artifacts") { _, context in
            let trial = try await trial(context)
            return try json(Artifacts(home: home, experiment: try context.parameters.require("name"), trial: trial.name).list())
        }
        v1.get(":name/trials/:trial/artifacts/**") { _, context in try await artifact(context) }
        PushRoute(store: store, home: home).addRoutes(to: router)
    }

    // MARK: Experiments

    private func create(_ request: Request, context: some RequestContext) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: Self.maxBodyBytes)
        guard var text = String(validating: body.readableBytesView, as: UTF8.self) else {
            throw APIError(.badRequest, code: "BadRequest", "the spec is not valid UTF-8 text")
        }
        // A byte order mark is how some editors start UTF-8 files; `knob validate` reads past it too.
        if text.unicodeScalars.first == "\u{FEFF}" { text.unicodeScalars.removeFirst() }
        let spec = try ExperimentSpec.parse(text, limits: limits)
        guard spec.trialTemplate.command != nil || spec.runsOnKubernetes else { throw KnobError.needsCommand(spec.name) }
        try push.check(spec)
        // Relative paths of the template resolve against the folder the client names (its spec file's).
        let directory = request.uri.queryParameters.get("directory") ?? home.path
        guard directory.hasPrefix("/") else {
            throw APIError(.badRequest, code: "BadRequest", "directory must be an absolute path, found \(directory)")
        }
        let created = try await store.createExperiment(try Engine.newRecord(specText: text, spec: spec, directory: directory))
        try await store.markExperimentRunning(created.id!)
        try await manager.start(spec.name)
        return try json(try await ExperimentView.load(try await store.requireExperiment(spec.name), store: store), status: .created)
    }

    /// Every experiment, newest first; with `limit`, a page of them, and the `Knob-Continue`
    /// header with the token of the next page when more follow.
    private func list(_ request: Request) async throws -> Response {
        let page = try Page(request)
        let listing = try await cache.answer("experiments?limit=\(page.limit ?? 0)&after=\(page.after ?? -1)") {
            let experiments: [ExperimentRecord]
            var next: String?
            if let limit = page.limit {
                let found = try await store.experiments(beforeId: page.after.map(Int64.init), limit: limit)
                experiments = found.experiments
                if found.more, let last = experiments.last?.id { next = String(last) }
            } else {
                experiments = try await store.experiments()
            }
            var listed: [ReadCache.Listed] = []
            for experiment in experiments {
                var view = try await ExperimentView.load(experiment, store: store)
                // Whether a controller drives it is looked at for each answer, below.
                let unknown = view.driven == nil
                view.driven = unknown ? nil : true
                let driven = try encoded(view)
                if !unknown { view.driven = false }
                listed.append(ReadCache.Listed(name: experiment.name, driven: driven, notDriven: unknown ? driven : try encoded(view)))
            }
            return .init(continueToken: next, experiments: listed)
        }
        // The array JSONEncoder writes: `[`, the items joined by `,`, `]`.
        var body = ByteBuffer()
        body.reserveCapacity(listing.size / 2 + listing.experiments.count + 2)
        body.writeStaticString("[")
        for (index, experiment) in listing.experiments.enumerated() {
            if index > 0 { body.writeStaticString(",") }
            var item = home.isDriven(experiment: experiment.name) ? experiment.driven : experiment.notDriven
            body.writeBuffer(&item)
        }
        body.writeStaticString("]")
        return response(body, continueToken: listing.continueToken)
    }

    private func get(_ context: some RequestContext) async throws -> Response {
        try json(try await ExperimentView.load(try await experiment(context), store: store, events: 20))
    }

    private func stop(_ context: some RequestContext) async throws -> Response {
        let experiment = try await experiment(context)
        guard manager.stop(experiment.name, reason: "stopped by a user") else {
            let name = experiment.name
            if let pid = FileLock.holder(path: FileLock.experimentPath(name, home: home)), pid != String(getpid()) {
                throw APIError(.conflict, code: "NotRunning", "experiment \(name) is run by a knob run process (pid \(pid)), not by knobd: "
                               + "stop it with Ctrl-C where it runs, or kill -INT \(pid)")
            }
            if experiment.status == .running {
                throw APIError(.conflict, code: "NotRunning", "nothing drives experiment \(name) now (its process stopped while it ran): "
                               + "knob resume \(name) runs it again, knob delete \(name) removes it")
            }
            throw APIError(.conflict, code: "NotRunning", "experiment \(name) is not running (\(experiment.status.rawValue)); knob resume \(name) runs it again")
        }
        await manager.waitUntilStopped(experiment.name)
        return try json(try await ExperimentView.load(try await store.requireExperiment(experiment.name), store: store))
    }

    private func resume(_ context: some RequestContext) async throws -> Response {
        let experiment = try await experiment(context)
        guard !manager.isRunning(experiment.name) else {
            throw APIError(.conflict, code: "AlreadyRunning", "experiment \(experiment.name) is already running")
        }
        let spec = try experiment.parsedSpec()
        try push.check(spec)
        if experiment.status == .succeeded || experiment.status == .failed {
            let ended = try await store.trialCounts(of: experiment.id!).filter { $0.key.isFinished }.map(\.value).reduce(0, +)
            if let max = spec.maxTrialCount, ended >= max {
                throw APIError(.conflict, code: "BudgetSpent",
                               "experiment \(experiment.name) has used its \(max) trials; raise maxTrialCount first (knob edit \(experiment.name) --max-trials N)")
            }
        }
        try await store.markExperimentRunning(experiment.id!, message: "Experiment is running again")
        try await manager.start(experiment.name)
        return try json(try await ExperimentView.load(try await store.requireExperiment(experiment.name), store: store), status: .accepted)
    }

    /// `PATCH` with `{"maxTrialCount": 20, "parallelTrialCount": 4, "maxFailedTrialCount": 5}` (any of them).
    private func edit(_ request: Request, context: some RequestContext) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: Self.maxBodyBytes)
        let edit = try BudgetEdit(json: Data(body.readableBytesView), limits: limits)
        let experiment = try await experiment(context)
        var spec = try experiment.parsedSpec()
        if let value = edit.maxTrialCount { spec.maxTrialCount = value }
        if let value = edit.parallelTrialCount { spec.parallelTrialCount = value }
        if let value = edit.maxFailedTrialCount { spec.maxFailedTrialCount = value }
        if let max = spec.maxTrialCount, spec.parallelTrialCount > max {
            throw APIError(.unprocessableContent, code: "InvalidSpec", "parallelTrialCount \(spec.parallelTrialCount) must not exceed maxTrialCount \(max)")
        }
        if experiment.status == .running, request.uri.queryParameters.get("force") != "true" {
            try await refuseLosingWork(edit, spec: spec, experiment: experiment)
        }
        try await store.updateSpec(experiment.id!, specJSON: String(decoding: try JSONEncoder.sorted.encode(spec), as: UTF8.self),
                                   event: "budget: maxTrialCount \(spec.maxTrialCount.map(String.init) ?? "unlimited"), parallelTrialCount \(spec.parallelTrialCount), maxFailedTrialCount \(spec.maxFailedTrialCount.map(String.init) ?? "unlimited")")
        manager.setBudget(experiment.name, .init(maxTrialCount: spec.maxTrialCount, parallelTrialCount: spec.parallelTrialCount,
                                                 maxFailedTrialCount: spec.maxFailedTrialCount))
        return try json(try await ExperimentView.load(try await store.requireExperiment(experiment.name), store: store))
    }

    /// A budget below what a running experiment has already used would end it at once and kill
    /// its running trials: refused, unless the client insists (`force=true`).
    private func refuseLosingWork(_ edit: BudgetEdit, spec: ExperimentSpec, experiment: ExperimentRecord) async throws {
        let counts = try await store.trialCounts(of: experiment.id!)
        let created = counts.values.reduce(0, +)
        let unfinished = counts.filter { !$0.key.isFinished }.map(\.value).reduce(0, +)
        let failures = counts.filter { $0.key.countsAsFailure }.map(\.value).reduce(0, +)
        let losing = unfinished == 0 ? "end it now" : "end it and kill its \(unfinished) unfinished trial\(unfinished == 1 ? "" : "s")"
        if let max = edit.maxTrialCount, max < created {
            throw APIError(.conflict, code: "BudgetBelowUsage",
                           "experiment \(experiment.name) has already created \(created) trials; maxTrialCount \(max) would \(losing). "
                           + "Ask for at least \(created), or repeat with force=true (knob edit --force) to end it")
        }
        if let max = edit.maxFailedTrialCount, failures >= Swift.max(1, max) {
            throw APIError(.conflict, code: "BudgetBelowUsage",
                           "experiment \(experiment.name) has already had \(failures) failed trials; maxFailedTrialCount \(max) would fail it and \(losing). "
                           + "Ask for more than \(failures), or repeat with force=true (knob edit --force) to end it")
        }
    }

    private func delete(_ context: some RequestContext) async throws -> Response {
        let experiment = try await experiment(context)
        if manager.stop(experiment.name, reason: "deleted by a user") { await manager.waitUntilStopped(experiment.name) }
        try await store.deleteExperiment(named: experiment.name)
        home.removeFiles(ofExperiment: experiment.name)
        return Response(status: .noContent)
    }

    // MARK: Trials

    /// The experiment's trials in creation order, only those in `state` when given; with `limit`,
    /// a page of them, and the `Knob-Continue` header when more follow.
    private func trials(_ request: Request, context: some RequestContext) async throws -> Response {
        let page = try Page(request)
        var state: TrialState?
        if let text = request.uri.queryParameters.get("state") {
            guard let known = TrialState(rawValue: text) else {
                throw APIError(.badRequest, code: "BadRequest",
                               "state \"\(text.prefix(40))\" is not a trial state; use one of \(TrialState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            state = known
        }
        let name = try experimentName(context)
        return try await cached("trials/\(name)?state=\(state?.rawValue ?? "")&limit=\(page.limit ?? 0)&after=\(page.after ?? 0)") {
            let experimentId = try await store.requireExperiment(name).id!
            let found = try await store.trials(of: experimentId, state: state, afterSequence: page.after ?? 0,
                                               limit: page.limit ?? SpecLimits.default.maxTrialCount + 1)
            let next = found.more ? found.trials.last.map { String($0.sequence) } : nil
            return .init(body: try encoded(found.trials), continueToken: next)
        }
    }

    /// One report of a metric by one of an experiment's trials.
    struct TrialReport: Encodable {
        var trialName: String
        var step: Int
        var value: Double
    }

    /// Every trial's numeric reports of one metric (`metric`, the objective's by default), in the order
    /// they were stored: what the dashboard's intermediate values plot draws, in one request.
    private func reports(_ request: Request, context: some RequestContext) async throws -> Response {
        let experiment = try await experiment(context)
        let metric = request.uri.queryParameters.get("metric") ?? experiment.objectiveMetricName
        var names: [Int64: String] = [:]
        for trial in try await store.trials(of: experiment.id!) { names[trial.id!] = trial.name }
        let reports = try await store.reports(of: experiment.id!, metric: metric).compactMap { report in
            names[report.trialId].map { TrialReport(trialName: $0, step: report.step, value: report.value) }
        }
        // JSON has no infinities; the scraper stores none, and a store written otherwise is not trusted to.
        return try json(reports.filter(\.value.isFinite))
    }

    /// How much each parameter matters to `metric` (the objective's by default), from the completed
    /// trials; a metric the experiment does not record is a 404 that lists those it does.
    private func importances(_ request: Request, context: some RequestContext) async throws -> Response {
        let experiment = try await experiment(context)
        let trials = try await store.trials(of: experiment.id!)
        do {
            return try json(try await ImportanceReport.computed(experiment: experiment, trials: trials, metric: request.uri.queryParameters.get("metric")))
        } catch let error as UnknownMetricError {
            throw APIError(.notFound, code: "NotFound", error.description)
        }
    }

    /// The trial's log; with `follow=true` the response stays open and streams what the trial
    /// writes until it ends.
    private func logs(_ request: Request, context: some RequestContext) async throws -> Response {
        let trial = try await trial(context)
        let follow = request.uri.queryParameters.get("follow") == "true"
        guard let path = trial.logPath else {
            if follow { throw APIError(.conflict, code: "NotStarted", "trial \(trial.name) has not started yet") }
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody())
        }
        let store = self.store
        let name = trial.name
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody { writer in
            let handle = FileHandle(forReadingAtPath: path)
            defer { try? handle?.close() }
            while true {
                let chunk = (try? handle?.read(upToCount: 1 << 16)) ?? nil
                if let chunk, !chunk.isEmpty {
                    try await writer.write(ByteBuffer(bytes: chunk))
                    continue
                }
                guard follow, let current = try? await store.trial(named: name), !current.state.isFinished else { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await writer.finish(nil)
        })
    }

    /// One artifact's bytes, read as they are sent.
    private func artifact(_ context: some RequestContext) async throws -> Response {
        let trial = try await trial(context)
        let relative = context.parameters.getCatchAll().joined(separator: "/")
        let path: String
        do {
            path = try Artifacts(home: home, experiment: try context.parameters.require("name"), trial: trial.name).file(relative)
        } catch {
            throw APIError(.notFound, code: "NotFound", "\(error)")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw APIError(.notFound, code: "NotFound", "the trial has no artifact \(relative)") }
        return Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: ResponseBody { writer in
            defer { try? handle.close() }
            while let chunk = try handle.read(upToCount: 1 << 16), !chunk.isEmpty {
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        })
    }

    // MARK: Lookups

    private func experiment(_ context: some RequestContext) async throws -> ExperimentRecord {
        try await store.requireExperiment(try experimentName(context))
    }

    /// The experiment the path names, checked to be a name one could have.
    private func experimentName(_ context: some RequestContext) throws -> String {
        let name = try context.parameters.require("name")
        if let problem = dns1123LabelProblem(name) { throw APIError(.badRequest, code: "BadRequest", "experiment name: \(problem)") }
        return name
    }

    /// The JSON answer kept under `key` while the store is unchanged, or made by `make`.
    private func cached(_ key: String, make: () async throws -> ReadCache.Value) async throws -> Response {
        let value = try await cache.answer(key, make: make)
        return response(value.body, continueToken: value.continueToken)
    }

    private func trial(_ context: some RequestContext) async throws -> TrialRecord {
        let experiment = try await experiment(context)
        let name = try context.parameters.require("trial")
        guard let trial = try await store.trial(named: name), trial.experimentId == experiment.id else {
            throw APIError(.notFound, code: "NotFound", "experiment \(experiment.name) has no trial named \(name)")
        }
        return trial
    }
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, continueToken: String? = nil) throws -> Response {
    response(try encoded(value), status: status, continueToken: continueToken)
}

/// `value` as the API writes JSON.
func encoded(_ value: some Encodable) throws -> ByteBuffer {
    ByteBuffer(bytes: try APIJSON.encoder.encode(value))
}

/// A JSON answer of `body`, with the `Knob-Continue` header when a page follows.
func response(_ body: ByteBuffer, status: HTTPResponse.Status = .ok, continueToken: String? = nil) -> Response {
    var headers: HTTPFields = [.contentType: "application/json"]
    if let continueToken { headers[Page.continueHeader] = continueToken }
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: body))
}

/// `limit` and `continue` of a list request, as Kubernetes pages its lists: `limit` (1 to 1000)
/// asks for a page, and the answer's `Knob-Continue` header is the `continue` of the next one.
struct Page {
    static let maxLimit = 1000
    static let continueHeader = HTTPFields.Element.Name("Knob-Continue")!

    /// The page size; nil for the whole list.
    var limit: Int?
    /// Where the page starts: after this position (a token this server gave).
    var after: Int?

    init(_ request: Request) throws {
        let query = request.uri.queryParameters
        if let text = query.get("limit") {
            guard let value = Int(text), (1...Self.maxLimit).contains(value) else {
                throw APIError(.badRequest, code: "BadRequest", "limit must be a whole number from 1 to \(Self.maxLimit), found \"\(text.prefix(40))\"")
            }
            limit = value
        }
        if let text = query.get("continue"), !text.isEmpty {
            guard let value = Int(text), value >= 0 else {
                throw APIError(.badRequest, code: "BadRequest",
                               "continue \"\(text.prefix(40))\" is not a token this server gave: pass the Knob-Continue header of the previous page")
            }
            after = value
        }
    }
}
