import Foundation
import Knob
import Store
import Synchronization

/// How `knob run` shows its progress: a line per trial event, always; on a terminal, also a status
/// line under them, redrawn in place: trials done out of the budget, the time so far and an
/// estimate of the rest, the best trial, and each running trial's latest objective.
final class ProgressPrinter: Sendable {
    let spec: ExperimentSpec
    /// Where lines go when there is no terminal (standard output, or standard error with -o json).
    private let printLine: @Sendable (String) -> Void
    /// The terminal the lines go to, when they go to one.
    let terminal: Terminal?
    private let state: Mutex<ProgressState>

    init(spec: ExperimentSpec, terminal: Terminal?, print: @escaping @Sendable (String) -> Void) {
        self.spec = spec
        self.terminal = terminal
        self.printLine = print
        self.state = Mutex(ProgressState(startedAt: Date()))
    }

    /// Prints a line above the status line.
    func log(_ line: String) {
        state.withLock { state in emit([line], state: &state) }
    }

    /// Removes the status line for good; later lines are printed as they are.
    func finish() {
        state.withLock { state in
            if state.statusShown, let terminal { terminal.write(Terminal.clearLine) }
            state.statusShown = false
            state.finished = true
        }
    }

    /// Keeps the status line current until cancelled: reads the experiment's trials once, then its
    /// running trials' live observations twice a second. Does nothing without a terminal.
    func follow(_ store: Store, experiment: ExperimentRecord) async {
        guard terminal != nil, let experimentId = experiment.id else { return }
        if let trials = try? await store.trials(of: experimentId) {
            let best = try? await store.optimalTrial(of: experiment)
            state.withLock { state in state.load(trials, best: best) }
        }
        while !Task.isCancelled {
            if let running = try? await store.trials(of: experimentId, state: .running, limit: 64).trials {
                state.withLock { state in
                    state.running = running
                    emit([], state: &state)
                }
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    func handle(_ event: ControllerEvent) {
        state.withLock { state in
            state.apply(event)
            emit(lines(for: event), state: &state)
        }
    }

    /// Prints `lines`, then (on a terminal) the status line again; called with the state locked.
    private func emit(_ lines: [String], state: inout ProgressState) {
        guard let terminal, !state.finished else {
            lines.forEach(printLine)
            return
        }
        let width = terminal.size.columns
        // The status line never fills the last column, so that the terminal never wraps it.
        let status = fitted(state.statusText(spec: spec), width: width - 1)
        terminal.write(Terminal.clearLine + lines.map { $0 + "\n" }.joined() + status)
        state.statusShown = true
    }

    /// The lines an event prints, the same on a terminal and elsewhere.
    private func lines(for event: ControllerEvent) -> [String] {
        switch event {
        case .resumed(let adopted, let pending):
            return ["following again \(adopted) trial\(adopted == 1 ? "" : "s") left running by an earlier run; starting \(pending) that had not started"]
        case .trialStarted(let trial):
            return ["        \(trial.name)  started    \(assignmentText(trial.assignments))"]
        case .trialWaiting(let trial, let reason):
            return ["        \(trial.name)  waiting    \(reason)"]
        case .trialEnded(let trial, let best, let completed):
            let total = spec.maxTrialCount.map { "/\($0)" } ?? ""
            let metric = spec.objective.objectiveMetricName
            let result: String
            if trial.state == .earlyStopped {
                // Why it stopped, with the numbers; its best value is in the message.
                result = trial.message
            } else if let value = trial.objectiveValue {
                result = "\(metric)=\(formatValue(value))"
            } else {
                result = trial.message.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? trial.message
            }
            let bestText = best.flatMap { b in b.objectiveValue.map { "best \(metric)=\(formatValue($0)) (\(b.name))" } } ?? "no best yet"
            let state = trial.state.rawValue + String(repeating: " ", count: max(0, 10 - trial.state.rawValue.count))
            var lines = ["[\(completed)\(total)] \(trial.name)  \(state) \(result)  \(assignmentText(trial.assignments))  | \(bestText)"]
            if trial.state == .failed || trial.state == .metricsUnavailable {
                lines += trial.message.split(separator: "\n").dropFirst().map { "        \($0)" }
            }
            return lines
        case .stopping(let message):
            return [message]
        }
    }
}

/// What the status line says, kept from the controller's events and the store's running trials.
struct ProgressState {
    /// When this process began to run the experiment.
    var startedAt: Date
    var completed = 0
    var best: (name: String, value: Double)?
    /// How long each ended trial ran, in seconds.
    var durations: [TimeInterval] = []
    var running: [TrialRecord] = []
    var statusShown = false
    var finished = false

    /// What an earlier run left: the ended trials and the best one.
    mutating func load(_ trials: [TrialRecord], best: TrialRecord?) {
        let ended = trials.filter(\.state.isFinished)
        completed = max(completed, ended.count)
        if durations.isEmpty { durations = ended.compactMap(Self.duration) }
        if self.best == nil, let best, let value = best.objectiveValue { self.best = (best.name, value) }
        running = trials.filter { $0.state == .running }
    }

    mutating func apply(_ event: ControllerEvent) {
        switch event {
        case .trialStarted(let trial):
            if !running.contains(where: { $0.name == trial.name }) { running.append(trial) }
        case .trialEnded(let trial, let best, let completed):
            self.completed = completed
            running.removeAll { $0.name == trial.name }
            if let duration = Self.duration(trial) { durations.append(duration) }
            if let best, let value = best.objectiveValue { self.best = (best.name, value) }
        case .resumed, .trialWaiting, .stopping:
            break
        }
    }

    static func duration(_ trial: TrialRecord) -> TimeInterval? {
        guard let start = trial.startedAt, let end = trial.completedAt else { return nil }
        return max(0, end.timeIntervalSince(start))
    }

    /// `2/6 done, 1m 5s, ETA 40s | best 0.934 (mnist-2) | mnist-3 step 4 0.91, mnist-4 -`
    func statusText(spec: ExperimentSpec, now: Date = Date()) -> String {
        let budget = spec.maxTrialCount.map { "/\($0)" } ?? ""
        var parts = ["\(completed)\(budget) done, \(durationText(now.timeIntervalSince(startedAt)))"
            + (spec.maxTrialCount == nil ? "" : ", ETA \(eta(spec: spec, now: now).map(durationText) ?? "-")")]
        parts.append(best.map { "best \(formatValue($0.value)) (\($0.name))" } ?? "no best yet")
        let metric = spec.objective.objectiveMetricName
        let runningText = running.map { trial -> String in
            // The step is the objective's report count (a report's step when it names none).
            guard let latest = trial.observation.first(where: { $0.name == metric }) else { return "\(trial.name) -" }
            return "\(trial.name) step \(latest.count) \(formatValue(latest.latest))"
        }
        parts.append(running.isEmpty ? "none running" : runningText.joined(separator: ", "))
        return parts.joined(separator: " | ")
    }

    /// Time left, from the ended trials' mean duration: what the running trials still need and the
    /// trials not yet started, shared among the parallel slots. Nil before a trial has ended.
    func eta(spec: ExperimentSpec, now: Date) -> TimeInterval? {
        guard let maxTrials = spec.maxTrialCount, !durations.isEmpty else { return nil }
        let mean = durations.reduce(0, +) / Double(durations.count)
        let runningLeft = running.map { trial in max(0, mean - now.timeIntervalSince(trial.startedAt ?? now)) }
        let notStarted = max(0, maxTrials - completed - running.count)
        let work = runningLeft.reduce(0, +) + Double(notStarted) * mean
        let slots = Double(max(1, spec.parallelTrialCount))
        return max(work / slots, runningLeft.max() ?? 0)
    }
}
