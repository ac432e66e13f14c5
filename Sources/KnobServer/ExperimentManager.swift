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
    let runners: RunnerChoice
    let logger: Logger

    private struct Running {
        var stop: StopSignal
        var budget: LiveBudget
    }

    private let lock = NSLock()
    private var running: [String: Running] = [:]
    private var group: ServiceGroup?

    public init(store: Store, home: KnobHome, runners: RunnerChoice, logger: Logger) {
        self.store = store
        self.home = home
        self.runners = runners
        self.logger = logger
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
struct ExperimentService: Service {
    let name: String
    let manager: ExperimentManager
    let stop: StopSignal
    let budget: LiveBudget

    func run() async throws {
        defer { manager.finished(name) }
        let store = manager.store, home = manager.home, logger = manager.logger
        do {
            // A `knob run` of the same experiment would compete: let it be.
            let lock = try FileLock.experiment(name, home: home)
            defer { lock.release() }
            let experiment = try await store.requireExperiment(name)
            let spec = try experiment.parsedSpec()
            budget.set(.init(maxTrialCount: spec.maxTrialCount, parallelTrialCount: spec.parallelTrialCount,
                             maxFailedTrialCount: spec.maxFailedTrialCount))
            let controller = ExperimentController(store: store, home: home, spec: spec, runner: manager.runners.runner(for: spec), stop: stop, budget: budget)
            let final = try await withGracefulShutdownHandler {
                try await controller.run(experiment)
            } onGracefulShutdown: {
                stop.detach()
            }
            logger.info("experiment \(name): \(final.status.rawValue) (\(final.reason))")
        } catch KnobError.experimentBusy(_, let pid) {
            // Another process (a `knob run`) drives it: it stays as it is.
            logger.error("experiment \(name) is run by another knob process (pid \(pid)); this daemon leaves it alone")
        } catch {
            logger.error("experiment \(name) could not run: \(error)")
            if let experiment = try? await store.experiment(named: name), let id = experiment.id, !experiment.status.isFinished {
                try? await store.finishExperiment(id, status: .failed, reason: "ControllerError", message: "\(error)")
            }
        }
    }
}

enum ManagerError: Error, CustomStringConvertible {
    case shuttingDown

    var description: String { "knobd is shutting down; try again when it is back" }
}
