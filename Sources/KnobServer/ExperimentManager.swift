import Foundation
import Knob
import Logging
import ServiceLifecycle
import Store

/// Runs every experiment that is Running: one controller each, all children of this service.
///
/// On start it resumes the experiments the store says are Running (adopting their trials). On
/// graceful shutdown it stops scheduling and leaves running trials to their supervisors, for the
/// next daemon to adopt.
public final class ExperimentManager: Service, @unchecked Sendable {
    let store: Store
    let home: KnobHome
    let runner: any TrialRunner
    let logger: Logger

    private struct Running {
        var stop: StopSignal
        var budget: LiveBudget
    }

    private let lock = NSLock()
    private var running: [String: Running] = [:]
    private var shuttingDown = false
    private let starts: AsyncStream<String>
    private let startContinuation: AsyncStream<String>.Continuation

    public init(store: Store, home: KnobHome, runner: any TrialRunner, logger: Logger) {
        self.store = store
        self.home = home
        self.runner = runner
        self.logger = logger
        (starts, startContinuation) = AsyncStream.makeStream()
    }

    public func run() async throws {
        for experiment in try await store.experiments() where experiment.status == .running {
            logger.info("resuming experiment \(experiment.name)")
            try? start(experiment.name)
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for await name in starts {
                    group.addTask { await self.drive(name) }
                }
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
    }

    /// Starts driving an experiment; throws `KnobError.experimentBusy` if it is already driven.
    public func start(_ name: String) throws {
        lock.lock()
        defer { lock.unlock() }
        guard !shuttingDown else { throw ManagerError.shuttingDown }
        guard running[name] == nil else { throw KnobError.experimentBusy(name: name, pid: String(getpid())) }
        running[name] = Running(stop: StopSignal(), budget: LiveBudget(.init(maxTrialCount: nil, parallelTrialCount: 1, maxFailedTrialCount: nil)))
        startContinuation.yield(name)
    }

    /// Whether a controller drives the experiment now.
    public func isRunning(_ name: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return running[name] != nil
    }

    /// Asks a running experiment to stop (its trials are killed, it ends Stopped).
    public func stop(_ name: String, reason: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let entry = running[name] else { return false }
        entry.stop.request(reason)
        return true
    }

    /// Applies a budget edit to a running experiment.
    public func setBudget(_ name: String, _ budget: ExperimentView.Budget) {
        lock.lock()
        defer { lock.unlock() }
        running[name]?.budget.set(budget)
    }

    /// Waits until no controller drives the experiment (after `stop`).
    public func waitUntilStopped(_ name: String, timeout: Duration = .seconds(30)) async {
        let deadline = ContinuousClock.now + timeout
        while isRunning(name), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func shutdown() {
        lock.lock()
        shuttingDown = true
        for entry in running.values { entry.stop.detach() }
        lock.unlock()
        startContinuation.finish()
    }

    private func entry(_ name: String) -> Running? {
        lock.lock()
        defer { lock.unlock() }
        return running[name]
    }

    private func drive(_ name: String) async {
        defer { lock.withLock { running[name] = nil } }
        guard let entry = entry(name) else { return }
        do {
            // A `knob run` of the same experiment, or another daemon, would compete: let it be.
            let lock = try FileLock.experiment(name, home: home)
            defer { lock.release() }
            let experiment = try await store.requireExperiment(name)
            let spec = try experiment.parsedSpec()
            entry.budget.set(.init(maxTrialCount: spec.maxTrialCount, parallelTrialCount: spec.parallelTrialCount,
                                   maxFailedTrialCount: spec.maxFailedTrialCount))
            let controller = ExperimentController(store: store, home: home, spec: spec, runner: runner, stop: entry.stop,
                                                  budget: entry.budget)
            let final = try await controller.run(experiment)
            logger.info("experiment \(name): \(final.status.rawValue) (\(final.reason))")
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
