import Foundation
import Hummingbird
import Knob
import Kubernetes
import Logging
import ServiceLifecycle
import UnixSignals
import Store

/// How knobd runs.
public struct DaemonConfiguration: Sendable {
    public var home: KnobHome
    /// The Unix socket (default `<home>/knobd.sock`).
    public var socketPath: String
    /// A TCP address to serve too (`host:port`), every request then needing the bearer token.
    public var listen: (host: String, port: Int)?
    public var token: String?
    /// The executable whose `__supervise` mode watches each trial (knobd itself).
    public var supervisor: String
    public var logLevel: Logger.Level
    /// The cluster for experiments whose trials are Kubernetes Pods or Jobs.
    public var kubernetes: KubernetesOptions
    /// How long a trial's pod may stay unstarted (image pull, scheduling) before the trial fails.
    public var podPendingTimeout: Double
    /// What a spec or a budget edit may ask (`--max-parallel` sets its `maxParallelTrialCount`).
    public var limits: SpecLimits
    /// The URL pods reach knobd's TCP listener at (`--push-url`): where Kubernetes trials of Push
    /// experiments send their reports.
    public var pushURL: String?
    /// The trial runners (`trialRunners(…)`); only local processes when not given.
    public var runners: RunnerSet?
    /// Serve only reads, on TCP, beside whatever else uses the store (`knob dashboard`): no socket,
    /// no lock, no experiment run or resumed.
    public var readOnly = false

    public init(home: KnobHome, socketPath: String? = nil, listen: (host: String, port: Int)? = nil, token: String? = nil,
                supervisor: String, logLevel: Logger.Level = .info, kubernetes: KubernetesOptions = KubernetesOptions(),
                podPendingTimeout: Double = 300, limits: SpecLimits = .default) {
        self.home = home
        self.socketPath = socketPath ?? "\(home.path)/knobd.sock"
        self.listen = listen
        self.token = token
        self.supervisor = supervisor
        self.logLevel = logLevel
        self.kubernetes = kubernetes
        self.podPendingTimeout = podPendingTimeout
        self.limits = limits
    }
}

public enum DaemonError: Error, CustomStringConvertible {
    case alreadyRunning(home: String, pid: String)
    case tokenRequired
    /// The store cannot be used (written by a newer knob, unreadable…): said as the store says it.
    case store(any Error)

    public var description: String {
        switch self {
        case .alreadyRunning(let home, let pid):
            return "another knobd (pid \(pid)) already serves \(home); stop it first, or give this one another --home"
        case .tokenRequired:
            return "--listen needs --token-file: a TCP listener without a token would let anyone on the network run commands"
        case .store(let error):
            return "\(error)"
        }
    }
}

/// The composition root: the store, the experiment manager, the API on the Unix socket (and on
/// TCP when asked), run as one service group until SIGTERM or SIGINT.
public func runDaemon(_ configuration: DaemonConfiguration) async throws {
    let logger = {
        var logger = Logger(label: "knobd")
        logger.logLevel = configuration.logLevel
        return logger
    }()
    let home = configuration.home
    if configuration.listen != nil, configuration.token == nil { throw DaemonError.tokenRequired }
    if configuration.readOnly { return try await runReadOnly(configuration, logger: logger) }
    let lock: FileLock
    do {
        lock = try FileLock(path: "\(home.path)/knobd.lock")
    } catch let busy as FileLock.Busy {
        throw DaemonError.alreadyRunning(home: home.path, pid: busy.holder)
    }
    defer { lock.release() }
    // We hold the home's lock, so a socket file left here is a crashed daemon's. The socket is
    // bound under the umask 077 that knobd's entry point sets, in the 0700 home: it never exists
    // with looser modes than its final 0600.
    unlink(configuration.socketPath)

    var store: Store
    do {
        store = try home.openStore()
    } catch let error as StoreError {
        throw DaemonError.store(error)
    } catch let error as KnobError {
        throw DaemonError.store(error)
    }
    // One set of metrics for the daemon's life: its store, its controllers and its routers report to it.
    let metrics = DaemonMetrics()
    store.observer = metrics.storeObserver
    let runners = configuration.runners ?? RunnerSet([LocalRunner(supervisor: configuration.supervisor)])
    let push = PushEndpoints(local: "unix://\(configuration.socketPath)", kubernetes: configuration.pushURL)
    let manager = ExperimentManager(store: store, home: home, runners: runners, logger: logger, limits: configuration.limits,
                                    observer: metrics.engineObserver, push: push)
    let api = API(store: store, home: home, manager: manager, limits: configuration.limits, metrics: metrics,
                  kubernetes: configuration.kubernetes, push: push)

    let streams = UpdateStreams(store: store)
    let socketRouter = makeRouter(api, logger: logger, token: nil, streams: streams)
    let socketPath = configuration.socketPath
    var services: [any Service] = []
    services.append(Application(
        router: socketRouter,
        configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: "knobd"),
        onServerRunning: { _ in
            chmod(socketPath, 0o600)
            logger.info("knobd serving \(home.path) on \(socketPath)")
        },
        logger: logger))
    if let listen = configuration.listen, let token = configuration.token {
        let tcpRouter = makeRouter(api, logger: logger, token: token, streams: streams)
        services.append(Application(
            router: tcpRouter,
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "knobd"),
            onServerRunning: { _ in logger.info("knobd listening on \(listen.host):\(listen.port) (bearer token required)") },
            logger: logger))
    }
    let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    manager.attach(to: group)
    try await manager.resumeRunning()
    try await group.run()
    logger.info("knobd stopped; running trials were left to their supervisors")
}

/// The read-only server of `knob dashboard`: the API's reads and the dashboard on TCP, with the token.
private func runReadOnly(_ configuration: DaemonConfiguration, logger: Logger) async throws {
    guard let listen = configuration.listen, let token = configuration.token else { throw DaemonError.tokenRequired }
    let home = configuration.home
    let store: Store
    do {
        store = try home.openExistingStore()
    } catch {
        throw DaemonError.store(error)
    }
    let manager = ExperimentManager(store: store, home: home, runners: RunnerSet([LocalRunner()]),
                                    logger: logger, limits: configuration.limits)
    let router = makeRouter(API(store: store, home: home, manager: manager, limits: configuration.limits), logger: logger, token: token,
                            readOnly: true, streams: UpdateStreams(store: store))
    let application = Application(
        router: router, configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "knob-dashboard"),
        onServerRunning: { _ in logger.info("reading \(home.path) on \(listen.host):\(listen.port) (bearer token required)") },
        logger: logger)
    try await ServiceGroup(configuration: .init(services: [application], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
}

/// The API's router, with the dashboard and its update streams (`streams`, shared by the routers of
/// one daemon; a router of its own when nil): each request timed into the metrics, errors as JSON (405
/// for a method a path is not served with), and the token checked when one is given.
func makeRouter(_ api: API, logger: Logger, token: String?, readOnly: Bool = false, streams: UpdateStreams? = nil) -> Router<BasicRequestContext> {
    let streams = streams ?? UpdateStreams(store: api.store)
    let served = Router()
    api.addRoutes(to: served)
    Dashboard().addRoutes(to: served)
    streams.addRoutes(to: served)
    let router = Router()
    router.add(middleware: RequestMetricsMiddleware(metrics: api.metrics))
    router.add(middleware: ErrorMiddleware(logger: logger, routes: RouteTable(served.routes)))
    if let token { router.add(middleware: BearerTokenMiddleware(token: token)) }
    if readOnly { router.add(middleware: ReadOnlyMiddleware()) }
    api.addRoutes(to: router)
    Dashboard().addRoutes(to: router)
    streams.addRoutes(to: router)
    return router
}
