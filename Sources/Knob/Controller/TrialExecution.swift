import Foundation
import KnobAlgorithms
import Store
import Synchronization

/// A flag that tells running trials to stop, with why; or to be left running (`detach`) for
/// another process to adopt, as when the daemon shuts down.
///
/// A `request` (a user's stop) ends the experiment. The controller also stops its trials by itself
/// (`stopTrials`) when the experiment ends or the controller cannot go on; that stop lasts for one
/// run of the controller, so that a controller started again on the same signal is not stopped.
public final class StopSignal: Sendable {
    private struct State {
        var reason: String?
        var trialsReason: String?
        var detached = false
    }

    private let state = Mutex(State())
    /// Told of every change, so that the controller looks at once.
    let wakeup = Wakeup()

    public init() {}

    /// Stops following trials without ending them: they keep running, unrecorded, for a later
    /// process to adopt.
    public func detach() {
        state.withLock { $0.detached = true }
        wakeup.wake()
    }

    public var isDetached: Bool {
        state.withLock { $0.detached }
    }

    /// Asks every trial watching this signal to stop. The first reason given is kept.
    public func request(_ reason: String) {
        state.withLock { if $0.reason == nil { $0.reason = reason } }
        wakeup.wake()
    }

    public var reason: String? {
        state.withLock { $0.reason }
    }

    public var isRequested: Bool { reason != nil }

    /// Why running trials must stop now: a request, or the controller ending them.
    var trialStopReason: String? {
        state.withLock { $0.reason ?? $0.trialsReason }
    }

    /// Stops the running trials without asking the experiment to stop. The first reason is kept.
    func stopTrials(_ reason: String) {
        state.withLock { if $0.trialsReason == nil { $0.trialsReason = reason } }
        wakeup.wake()
    }

    /// Forgets `stopTrials`, for a new run of the controller.
    func resetTrialStop() {
        state.withLock { $0.trialsReason = nil }
    }
}

/// Runs one trial to its end: starts it, scrapes its output as it is written, records every report
/// with the log offset it reached, enforces the timeout, stops it when asked, and says how it ended.
struct TrialExecution: Sendable {
    let store: Store
    let runner: any TrialRunner
    let spec: ExperimentSpec
    let scraper: MetricsScraper
    let stop: StopSignal
    /// The experiment's early stopping rule, evaluated on each batch of stored reports.
    var stopper: EarlyStopper? = nil
    /// How long a stopped trial gets between SIGTERM and SIGKILL.
    let grace: Duration
    /// Told of each batch of output read.
    var observer: EngineObserver = .none
    /// Told each new reason a started trial is not running yet.
    var waiting: @Sendable (TrialRecord, String) -> Void = { _, _ in }
    /// How long the reading of a running trial's output waits for more when it found nothing new (a trial's
    /// end ends the wait at once): `KNOB_SCRAPE_INTERVAL` seconds, 0.01 to 3600, 0.1 by default.
    let pollInterval: Duration = Self.scrapeInterval(ProcessInfo.processInfo.environment["KNOB_SCRAPE_INTERVAL"])

    static func scrapeInterval(_ text: String?) -> Duration {
        guard let seconds = text.flatMap(Double.init), seconds >= 0.01, seconds <= 3600 else { return .milliseconds(100) }
        return .milliseconds(Int64(seconds * 1000))
    }

    /// How a trial ended, and its process or pod (to `release` once the end is recorded).
    struct Finished: Sendable {
        var end: TrialEnd
        var process: (any RunningTrial)?
    }

    /// Starts the trial and follows it to its end; `nil` when detached before it ended.
    func run(_ trial: TrialRecord, launch: TrialLaunch, metricsPath: String?) async -> Finished? {
        guard let trialId = trial.id else { return Finished(end: TrialEnd(state: .failed, reason: "Internal", message: "trial has no id")) }
        if spec.metricsCollector.kind == .push {
            guard launch.push != nil else {
                return Finished(end: TrialEnd(state: .failed, reason: "StartFailed",
                                              message: "cannot write the trial's push token in \(launch.trialDirectory) (see its permissions and free space)"))
            }
            // A start that an earlier process began and did not record: what it left is not this run's.
            PushChannel(trialDirectory: launch.trialDirectory).reset()
        }
        let process: any RunningTrial
        do {
            process = try await runner.start(launch)
        } catch {
            return Finished(end: TrialEnd(state: .failed, reason: "StartFailed", message: "\(error)"))
        }
        try? await store.markRunning(trialId, handle: process.handle, logPath: launch.logPath)
        process.onWaiting { [waiting] reason in waiting(trial, reason) }
        return await follow(trialId: trialId, process: process, launch: launch, metricsPath: metricsPath, offset: 0, prior: [], stopping: nil)
    }

    /// Follows a trial adopted after a restart: reading resumes where the recorded reports end.
    func resume(_ trial: TrialRecord, process: any RunningTrial, launch: TrialLaunch, metricsPath: String?) async -> Finished? {
        guard let trialId = trial.id else { return nil }
        let prior = (try? await store.metrics(ofTrial: trialId)) ?? []
        process.onWaiting { [waiting] reason in waiting(trial, reason) }
        return await follow(trialId: trialId, process: process, launch: launch, metricsPath: metricsPath,
                            offset: trial.logOffset, prior: prior, stopping: trial.stopping)
    }

    private func follow(trialId: Int64, process: any RunningTrial, launch: TrialLaunch, metricsPath: String?,
                        offset: Int64, prior: [MetricRecord], stopping: TrialStopping?) async -> Finished? {
        let exitBox = OnceValue<TrialExit>()
        return await withTaskGroup(of: Void.self) { group in
            group.addTask {
                exitBox.set(await process.wait())
            }
            let end = await scrape(trialId: trialId, process: process, exitBox: exitBox, launch: launch,
                                   metricsPath: metricsPath, offset: offset, prior: prior, stopping: stopping)
            if end == nil { group.cancelAll() }
            await group.waitForAll()
            return end.map { Finished(end: $0, process: process) }
        }
    }

    private func scrape(trialId: Int64, process: any RunningTrial, exitBox: OnceValue<TrialExit>, launch: TrialLaunch, metricsPath: String?,
                        offset: Int64, prior: [MetricRecord], stopping: TrialStopping?) async -> TrialEnd? {
        // TensorBoard event files are read as records, not lines: the lines source reads nothing then.
        let events = spec.metricsCollector.kind == .tensorFlowEvent ? metricsPath.map(TensorBoardDirectory.init) : nil
        let tail = FileTail(path: events == nil ? metricsPath ?? launch.logPath : "/dev/null", offset: offset)
        var lines = LineReader(startingAt: offset)
        // Event files are read again from their start after a restart: the reports stored before are skipped.
        var eventReportsToSkip = events == nil ? 0 : prior.count
        var observation = ObservationBuilder(metricNames: spec.metricNames, replaying: prior)
        let started = ContinuousClock.now
        // Bounded by validation; a spec stored before that bound existed is held to it here.
        let timeout = spec.trialTemplate.timeoutSeconds.map { Duration.milliseconds(Int64(Swift.min($0, SpecLimits.default.maxTimeoutSeconds) * 1000)) }
        // An end decided before a restart (an early stop) is applied now.
        var stoppedBecause: (state: TrialState, reason: String, message: String)? = stopping.map { ($0.state, $0.reason, $0.message) }
        var terminated = false
        // Pushed reports are refused once the trial has exited, before its file is read for the last time.
        var pushOpen = spec.metricsCollector.kind == .push
        // Reports read once the trial has exited, stored with its end in one transaction when no early stopping
        // rule needs to see them first (a crash before that leaves the log offset before them, to be read again).
        var exited = false
        var lastReports: [MetricRecord] = []

        /// Stores the reports in `newLines` (and new scalars of the event files); returns why the early
        /// stopping rule stops the trial, if it does.
        func record(_ newLines: [[UInt8]], bytes: Int) async -> StopReason? {
            var records: [MetricRecord] = []
            // Once per batch, whatever happens to it below.
            defer { if bytes > 0 || !newLines.isEmpty || !records.isEmpty { observer.scraped(newLines.count, bytes, records.count) } }
            let now = Date()
            func add(_ report: MetricReport) {
                let step = observation.add(report)
                records.append(MetricRecord(trialId: trialId, name: report.name, value: report.value, text: report.text,
                                            step: step, timestamp: report.timestamp ?? now))
            }
            for line in newLines {
                for report in scraper.reports(in: line) { add(report) }
            }
            if let events {
                for report in events.reports(named: spec.metricNames) {
                    if eventReportsToSkip > 0 {
                        eventReportsToSkip -= 1
                    } else {
                        add(report)
                    }
                }
                // A damaged event file is said in the experiment's events, and reading goes on.
                for problem in events.takeProblems() {
                    if let trial = try? await store.trial(named: launch.trialName) {
                        try? await store.appendEvent(EventRecord(experimentId: trial.experimentId, kind: "MetricsUnreadable",
                                                                 trialName: launch.trialName, message: problem))
                    }
                }
            }
            guard !records.isEmpty else { return nil }
            if exited, stopper == nil {
                lastReports += records
                return nil
            }
            let first = try? await store.appendReports(trialId, reports: records, logOffset: lines.consumed, observation: observation.metrics)
            guard let stopper, let first = first ?? nil else { return nil }
            var points: [TrialCurve.Point] = []
            for (index, record) in records.enumerated() where record.name == stopper.metric {
                if let value = record.value { points.append(TrialCurve.Point(step: record.step, value: value, order: first + Int64(index))) }
            }
            return stopper.observe(trialId: trialId, points)
        }

        while true {
            if stop.isDetached { return nil }
            exited = exitBox.value != nil
            if exited, pushOpen {
                PushChannel(trialDirectory: launch.trialDirectory).seal()
                pushOpen = false
            }
            let chunk = tail.read()
            // A metrics file written anew (replaced or truncated): its lines are read from its start.
            if tail.startedOver() { lines = LineReader(startingAt: 0) }
            let verdict = await record(lines.feed(chunk), bytes: chunk.count)
            if exited {
                // A trial that has exited ran to its end: what it printed last stops nothing.
                if chunk.isEmpty {
                    if let last = lines.finish() { _ = await record([last], bytes: 0) }
                    break
                }
                continue
            }
            if stoppedBecause == nil {
                if let verdict, let stopper {
                    // The decision is stored before the trial is stopped, so that a crash in between
                    // leaves it for the next process, which applies it once.
                    let decided = TrialStopping(state: .earlyStopped, reason: "EarlyStopped",
                                                message: verdict.message(metric: stopper.metric, format: formatValue))
                    _ = try? await store.decideEnd(trialId, decided)
                    stoppedBecause = (decided.state, decided.reason, decided.message)
                } else if let reason = stop.trialStopReason {
                    stoppedBecause = (.killed, "Killed", reason)
                } else if let timeout, ContinuousClock.now - started > timeout {
                    stoppedBecause = (.failed, "DeadlineExceeded",
                                      "ran longer than timeoutSeconds \(formatSeconds(timeout)); it was stopped")
                }
            }
            if stoppedBecause != nil, !terminated {
                terminated = true
                await process.terminate(grace: grace)
                continue
            }
            // Nothing new: look again after `pollInterval`, or at once when the trial exits.
            if chunk.isEmpty { _ = await exitBox.wait(upTo: pollInterval) }
        }

        let exit = exitBox.value ?? .signaled(SIGKILL)
        let objective = observation.value(of: spec.objective.objectiveMetricName,
                                          strategy: spec.objective.metricStrategies[spec.objective.objectiveMetricName] ?? .latest)
        var end: TrialEnd
        if let stoppedBecause {
            let best = stoppedBecause.state == .earlyStopped ? observation.bestValue(of: spec.objective) : nil
            end = TrialEnd(state: stoppedBecause.state, reason: stoppedBecause.reason, message: stoppedBecause.message,
                           exitCode: exitCode(exit), observation: observation.metrics, objectiveValue: best)
        } else {
            end = Self.end(exit: exit, observation: observation, objective: objective, spec: spec, logPath: launch.logPath)
        }
        if !lastReports.isEmpty {
            end.lastReports = lastReports
            end.logOffset = lines.consumed
        }
        return end
    }

    /// The state a finished trial ends in, and the message that says why.
    static func end(exit: TrialExit, observation: ObservationBuilder, objective: Double?, spec: ExperimentSpec, logPath: String) -> TrialEnd {
        let metric = spec.objective.objectiveMetricName
        switch exit {
        case .exited(0) where objective != nil:
            return TrialEnd(state: .succeeded, reason: "TrialSucceeded", message: "\(metric)=\(formatValue(objective!))",
                            exitCode: 0, observation: observation.metrics, objectiveValue: objective)
        case .exited(0):
            return TrialEnd(state: .metricsUnavailable, reason: "MetricsUnavailable",
                            message: "exited with code 0 but never reported \(metric)=<number>\(collectedFrom(spec.metricsCollector))\(lastOutput(logPath))",
                            exitCode: 0, observation: observation.metrics)
        default:
            let reason = switch exit {
            case .exited: "Error"
            case .signaled: "Signaled"
            case .startFailed: "StartFailed"
            case .lost: "Lost"
            case .failed(let reason, _, _): reason
            }
            let output = exit == .lost || exit.isStartFailure ? "" : lastOutput(logPath)
            return TrialEnd(state: .failed, reason: reason, message: "\(exit.description)\(output)",
                            exitCode: exitCode(exit), observation: observation.metrics)
        }
    }

    /// Where the collector looked for the reports, when not in the trial's output.
    private static func collectedFrom(_ collector: MetricsCollectorSpec) -> String {
        switch collector.kind {
        case .file: collector.path.map { " to \($0)" } ?? ""
        case .tensorFlowEvent: collector.path.map { " in event files under \($0)" } ?? ""
        case .custom: " to the output of its Custom collector"
        case .stdOut, .push: ""
        }
    }

    private static func lastOutput(_ logPath: String) -> String {
        let lines = lastLines(ofFile: logPath, count: 5)
        return lines.isEmpty ? "; it printed nothing" : "; last output:\n" + lines.map { "    \($0)" }.joined(separator: "\n")
    }
}

private func exitCode(_ exit: TrialExit) -> Int? {
    exit.code.map(Int.init)
}

extension TrialExit {
    public var code: Int32? {
        switch self {
        case .exited(let code): return code
        case .failed(_, _, let code): return code
        default: return nil
        }
    }

    var isStartFailure: Bool {
        if case .startFailed = self { return true }
        return false
    }
}

public func formatSeconds(_ duration: Duration) -> String {
    let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    return seconds == seconds.rounded() ? "\(Int(seconds))s" : String(format: "%.1fs", seconds)
}

/// A metric value for people: up to 6 significant digits.
public func formatValue(_ value: Double) -> String {
    // C's own %.6g (knob never sets a locale, so the point is "."), which is what String(format:) gives, without
    // Foundation's format parsing: a trial's end and each progress line format values.
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: 32) { buffer in
        let count = withVaList([value]) { vsnprintf(buffer.baseAddress!, 32, "%.6g", $0) }
        return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress!, count: Int(max(0, min(count, 31)))), as: UTF8.self)
    }
}
