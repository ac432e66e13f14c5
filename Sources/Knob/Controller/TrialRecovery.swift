import Foundation
import Store

/// What a controller finds when it starts: the trials an earlier process left, sorted out. Running
/// ones are adopted (or recorded as ended when they cannot be), pending ones are found running or
/// left to start, and what ended trials left behind is swept.
struct TrialRecovery: Sendable {
    let controller: ExperimentController

    struct Recovered: Sendable {
        /// Trials left running, followed again.
        var adopted: [(TrialRecord, any RunningTrial)] = []
        /// Trials recorded but never started: to start now.
        var pending: [TrialRecord] = []
        /// Every trial of the experiment so far.
        var created = 0
        /// Ended trials by state, those ended here included.
        var ended: [TrialState: Int] = [:]
        /// A trial had reached the objective's goal.
        var goalReached = false
    }

    func recover(_ experiment: ExperimentRecord) async throws -> Recovered {
        guard let experimentId = experiment.id else { return Recovered() }
        let store = controller.store, runner = controller.runner, spec = controller.spec
        var result = Recovered()
        var endedHandles: [[String: String]] = []
        for trial in try await store.trials(of: experimentId) {
            result.created += 1
            switch trial.state {
            case .running:
                if let process = await runner.adopt(handle: trial.runnerHandle) {
                    result.adopted.append((trial, process))
                } else if let end = try await end(trial) {
                    result.ended[end.state, default: 0] += 1
                }
            case .pending:
                // Its starter may have died after starting it but before recording that.
                let launch = controller.launch(for: trial, experiment: experiment)
                if let process = await runner.find(launch) {
                    try await store.markRunning(trial.id!, handle: process.handle, logPath: launch.logPath)
                    result.adopted.append((trial, process))
                } else {
                    result.pending.append(trial)
                }
            default:
                result.ended[trial.state, default: 0] += 1
                if !trial.runnerHandle.isEmpty { endedHandles.append(trial.runnerHandle) }
                if trial.state == .succeeded, let value = trial.objectiveValue, spec.objective.reachesGoal(value) { result.goalReached = true }
            }
        }
        let swept = await runner.sweep(experiment: experiment.name, ended: endedHandles)
        if swept > 0 {
            try await store.appendEvent(EventRecord(
                experimentId: experimentId, kind: "LeftoversRemoved",
                message: "removed \(swept) object(s) of ended trials that an earlier process had not removed"))
        }
        if !result.adopted.isEmpty || !result.pending.isEmpty {
            controller.onEvent(.resumed(adopted: result.adopted.count, pending: result.pending.count))
            try await store.appendEvent(EventRecord(
                experimentId: experimentId, kind: "TrialsAdopted",
                message: "following again \(result.adopted.count) trial(s) left running by an earlier process; "
                    + "starting \(result.pending.count) that had not started"))
        }
        return result
    }

    /// A running trial this runner cannot adopt (started without a supervisor): stopped if its
    /// process group is still there, and recorded as ended either way. One whose stop was decided
    /// before the earlier process died ends as decided.
    private func end(_ trial: TrialRecord) async throws -> TrialEnd? {
        let store = controller.store, spec = controller.spec
        let pgid = trial.runnerHandle["pgid"].flatMap(Int32.init)
        let alive = pgid.map { kill(-$0, 0) == 0 } ?? false
        if alive, let pgid { kill(-pgid, SIGKILL) }
        let end: TrialEnd
        if let stopping = trial.stopping {
            let observation = ObservationBuilder(metricNames: spec.metricNames, replaying: try await store.metrics(ofTrial: trial.id!))
            let best = stopping.state == .earlyStopped ? observation.bestValue(of: spec.objective) : nil
            end = TrialEnd(state: stopping.state, reason: stopping.reason, message: stopping.message,
                           observation: observation.metrics, objectiveValue: best)
        } else if alive, let pgid {
            end = TrialEnd(state: .killed, reason: "Interrupted",
                           message: "knob stopped while this trial ran and could not follow it again; its process group \(pgid) was killed")
        } else {
            end = TrialEnd(state: .failed, reason: "Lost",
                           message: "knob stopped while this trial ran, and its process was gone on resume; its result is unknown")
        }
        return try await store.finishTrial(trial.id!, end).map { _ in end }
    }
}
