import Foundation
import Knob
import Logging
import ServiceLifecycle
import Store

/// Keeps track of the experiments knobd drives. Each one runs as an `ExperimentService` in the
/// daemon's service group, beside the HTTP servers; when the daemon starts, every experiment the
/// store says is Running gets its service again (and its trials are adopted).
public final class ExperimentManager: @unchecked Sendable {
    let store: Store
    let home: KnobHome
    let runners: RunnerSet
    let logger: Logger
    /// What the daemon allows (`--max-parallel`): a stored spec asking more runs at this.
    let limits: SpecLimits
    /// Told of the controllers' suggestions and the output their trials print (`/metrics`).
    let observer: EngineObserver
    /// Where the trials of Push experiments send their reports.
    let push: PushEndpoints

    private struct Running {
        var stop: StopSignal
        var budget: LiveBudget
    }

    private let lock = NSLock()
    private var running: [String: Running] = [:]
    private var group: ServiceGroup?

    public init(store: Store, home: KnobHome, runners: RunnerSet, logger: Logger, limits: SpecLimits = .default,
                observer: EngineObserver = .none, push: PushEndpoints = PushEndpoints()) {
        self.store = store
        self.home = home
        self.runners = runners
        self.logger = logger
        self.limits = limits
        self.observer = observer
        self.push = push
    }

    /// The group experiment services join; set once, before it runs.
    func attach(to group: ServiceGroup) {
        lock.withLock { self.group = group }
    }

    /// Gives every Running experiment its service again.
    func resumeRunning() async throws {
        for experiment in try await store.experiments() where experiment.status == .running {
            logger.info("resuming experiment \(experiment.name)")
            try? await start(experiment.name)
        }
    }

    /// Starts driving an experiment; throws `KnobError.experimentBusy` if it is already driven.
    public func start(_ name: String) async throws {
        let (entry, group): (Running, ServiceGroup?) = try lock.withLock {
            guard running[name] == nil else { throw KnobError.experimentBusy(name: name, pid: String(getpid())) }
            let entry = Running(stop: StopSignal(), budget: LiveBudget(.init(maxTrialCount: nil, parallelTrialCount: 1, maxFailedTrialCount: nil)))
            running[name] = entry
            return (entry, self.group)
        }
        guard let group else { throw ManagerError.shuttingDown }
        await group.addServiceUnlessShutdown(.init(
            service: ExperimentService(name: name, manager: self, stop: entry.stop, budget: entry.budget),
            successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore))
    }

    /// Whether a service drives the experiment now.
    public func isRunning(_ name: String) -> Bool {
        lock.withLock { running[name] != nil }
    }

    /// Asks a running experiment to stop (its trials are killed, it ends Stopped).
    public func stop(_ name: String, reason: String) -> Bool {
        lock.withLock {
            guard let entry = running[name] else { return false }
            entry.stop.request(reason)
            return true
        }
    }

    /// Applies a budget edit to a running experiment.
    public func setBudget(_ name: String, _ budget: ExperimentView.Budget) {
        lock.withLock { running[name]?.budget.set(budget) }
    }

    /// Waits until no service drives the experiment (after `stop`).
    public func waitUntilStopped(_ name: String, timeout: Duration = .seconds(30)) async {
        let deadline = ContinuousClock.now + timeout
        while isRunning(name), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    fileprivate func finished(_ name: String) {
        lock.withLock { running[name] = nil }
    }
}

/// One experiment's controller as a service: it runs the experiment to its end, or, when the
/// daemon shuts down, stops following its trials and leaves them running for the next daemon.
///
/// Two guards keep one experiment from taking the daemon down with it:
/// - each start is recorded before the controller starts and cleared once it has scheduled its
///   first trials (or stopped cleanly); a third start after two that never completed (the daemon
///   died in them) marks the experiment Failed (`DaemonCrashed`) instead of crashing again;
/// - when the store cannot be written (disk full, I/O error), the controller stops its trials and
///   the experiment ends Failed (`StoreUnavailable`) if that can be recorded; if not, the service
///   tries again with backoff and drives the experiment again once the store takes writes.
struct ExperimentService: Service {
    let name: String
    let manager: ExperimentManager
    let stop: StopSignal
    let budget: LiveBudget

    /// How many starts may die before the experiment is given up.
    static let crashedStartLimit = 2
    /// The longest wait between two attempts on a store that cannot be written.
    static let maxRetryDelay: Duration = .seconds(30)

    func run() async throws {
        defer { manager.finished(name) }
        let store = manager.store, home = manager.home, logger = manager.logger
        do {
            // A `knob run` of the same experiment would compete: let it be.
            let lock = try FileLock.experiment(name, home: home)
            defer { lock.release() }
            var delay: Duration = .seconds(1)
            var retrying = false
            while true {
                do {
                    try await drive(countingTheStart: !retrying)
                    return
                } catch where StoreError.isUnavailable(error) && !stop.isDetached {
                    let message = "the store could not be written (\(error)); its trials were stopped. "
                        + "Free space on the disk of \(home.path) (or fix the disk), then `knob resume \(name)`"
                    if let experiment = try? await store.experiment(named: name), let id = experiment.id, !experiment.status.isFinished,
                       (try? await store.finishExperiment(id, status: .failed, reason: "StoreUnavailable", message: message)) != nil {
                        logger.error("experiment \(name): Failed (StoreUnavailable): \(error)")
                        return
                    }
                    logger.error("experiment \(name): the store cannot be written (\(error)); trying again in \(delay)")
                    try? await cancelWhenGracefulShutdown { [delay] in try await Task.sleep(for: delay) }
                    if Task.isCancelled || Task.isShuttingDownGracefully { return }
                    delay = min(delay * 2, Self.maxRetryDelay)
                    retrying = true
                }
            }
        } catch KnobError.experimentBusy(_, let pid) {
            // Another process (a `knob run`) drives it: it stays as it is.
            logger.error("experiment \(name) is run by another knob process (pid \(pid)); this daemon leaves it alone")
        } catch {
            logger.error("experiment \(name) could not run: \(error)")
            let reason = if case KnobError.refusedAtStart = error { "InvalidSpec" } else { "ControllerError" }
            if let experiment = try? await store.experiment(named: name), let id = experiment.id, !experiment.status.isFinished {
                try? await store.finishExperiment(id, status: .failed, reason: reason, message: "\(error)")
            }
        }
    }

    /// One start of the controller, run until the experiment ends or the daemon shuts down. A start
    /// is counted once per daemon: the retries after a store failure are no new crash risk.
    private func drive(countingTheStart: Bool) async throws {
        let store = manager.store, home = manager.home, logger = manager.logger
        let experiment = try await store.requireExperiment(name)
        guard let experimentId = experiment.id else { return }
        let earlier = countingTheStart ? try await store.recordStartAttempt(experimentId) : (unfinished: 0, lastStartedAt: nil)
        if earlier.unfinished >= Self.crashedStartLimit {
            let when = earlier.lastStartedAt.map { " (the last at \($0.formatted(.iso8601)))" } ?? ""
            let message = "knobd died \(earlier.unfinished) times in a row while starting this experiment\(when), so it is no "
                + "longer started, and its running trials were stopped: something in its spec or its stored trials makes the "
                + "daemon crash. knobd's log around those times says more. Fix the cause (upgrade knob, or change the budget "
                + "with `knob edit \(name)`), then `knob resume \(name)`; or `knob delete \(name)`"
            // Recorded first: should stopping the trials crash the daemon too, the next start leaves the experiment alone.
            try await store.finishExperiment(experimentId, status: .failed, reason: "DaemonCrashed", message: message)
            logger.error("experiment \(name): Failed (DaemonCrashed) after \(earlier.unfinished) starts that never completed")
            await stopLeftTrials(of: experiment)
            return
        }
        #if DEBUG
        // Fault injection for the tests of the guard above: the daemon dies while starting this experiment.
        if ProcessInfo.processInfo.environment["KNOB_DEBUG_CRASH_ON_START"] == name {
            logger.critical("KNOB_DEBUG_CRASH_ON_START=\(name): aborting while starting it")
            abort()
        }
        #endif
        let spec = try experiment.parsedSpec()
        budget.set(.init(maxTrialCount: spec.maxTrialCount, parallelTrialCount: spec.parallelTrialCount,
                         maxFailedTrialCount: spec.maxFailedTrialCount))
        var controller = ExperimentController(store: store, home: home, spec: spec, runner: manager.runners.runner(for: spec),
                                              stop: stop, budget: budget)
        controller.maxParallelTrialCount = manager.limits.maxParallelTrialCount
        controller.observer = manager.observer
        controller.pushURL = manager.push.url(for: spec)
        controller.onStarted = { try? await store.clearStartAttempts(experimentId) }
        let final = try await withGracefulShutdownHandler {
            try await controller.run(experiment)
        } onGracefulShutdown: {
            stop.detach()
        }
        // Also when the daemon shut down before the start was over: that was no crash.
        try? await store.clearStartAttempts(experimentId)
        logger.info("experiment \(name): \(final.status.rawValue) (\(final.reason))")
    }

    /// Stops the trials that an experiment given up on left running or about to run, and records
    /// them Killed, as the controller does when an experiment ends.
    private func stopLeftTrials(of experiment: ExperimentRecord) async {
        let store = manager.store
        guard let experimentId = experiment.id, let trials = try? await store.trials(of: experimentId) else { return }
        let runner = (try? experiment.parsedSpec()).map(manager.runners.runner(for:))
        await withTaskGroup(of: Void.self) { group in
            for trial in trials where !trial.state.isFinished {
                group.addTask {
                    if let runner, let process = await runner.adopt(handle: trial.runnerHandle) {
                        await process.terminate(grace: .seconds(5))
                    }
                    _ = try? await store.finishTrial(trial.id!, TrialEnd(
                        state: .killed, reason: "DaemonCrashed",
                        message: "stopped because knobd gave up on the experiment after it crashed while starting it"))
                }
            }
        }
    }
}

enum ManagerError: Error, CustomStringConvertible {
    case shuttingDown

    var description: String { "knobd is shutting down; try again when it is back" }
}
