import Foundation
import Knob
import Store

/// What `knob watch` shows of an experiment: in a terminal, a screen redrawn in place that fits
/// it (the status at the top, the latest events, then the latest trials as room allows, every line
/// cut to the width); elsewhere, the whole picture once, then a line for each change.
struct WatchScreen {
    let terminal: Terminal?
    /// Per trial, what its last printed line said (without its time, which changes every second).
    private var shownTrials: [String: String] = [:]
    private var shownEvents: Set<String> = []
    private var shownStatus: String?
    /// Whether the terminal has been drawn on.
    private var drawn = false

    init(terminal: Terminal?) {
        self.terminal = terminal
    }

    /// Shows the experiment as it is now.
    mutating func show(_ view: ExperimentView, trials: [TrialRecord], now: Date = Date()) {
        if let terminal {
            let size = terminal.size
            // The first time, the whole screen is cleared; later ones write over it.
            let start = drawn ? "" : Terminal.clearScreen
            drawn = true
            terminal.write(start + Self.screen(view, trials: trials, columns: size.columns, rows: size.rows, now: now))
        } else {
            // Unbuffered, so that a reader of the pipe sees each change when it happens.
            let text = changes(view, trials: trials, now: now)
            if !text.isEmpty { FileHandle.standardOutput.write(Data(text.utf8)) }
        }
    }

    /// The screen for a terminal of `columns`×`rows`: the cursor home, each line written over the
    /// old one and erased to its end, and the rest of the screen erased. The last row stays empty,
    /// so that the terminal never scrolls.
    static func screen(_ view: ExperimentView, trials: [TrialRecord], columns: Int, rows: Int, now: Date) -> String {
        let room = max(1, rows - 1)
        // Fewer events when the trials would have less than a few rows.
        var events = 5
        var head = describe(view, events: events).components(separatedBy: "\n")
        while events > 0, room - head.count - 1 < min(3, trials.count) {
            events -= 1
            head = describe(view, events: events).components(separatedBy: "\n")
        }
        let trialRows = max(0, room - head.count - 1)
        var lines = head
        if trialRows > 0 {
            let latest = Array(trials.suffix(trialRows))
            lines.append("Trials (latest \(latest.count) of \(trials.count)):")
            lines += trialLines(latest, metric: objectiveMetric(view), now: now)
        }
        // Short of the last column, where a terminal would wrap or erase.
        let shown = lines.prefix(room).map { fitted($0, width: columns - 1) + "\u{1B}[K" }
        return "\u{1B}[H" + shown.joined(separator: "\n") + "\u{1B}[J"
    }

    /// The whole picture the first time; then only what changed: the status, new events, and the
    /// trials that are new or whose state or objective changed, and the status.
    mutating func changes(_ view: ExperimentView, trials: [TrialRecord], now: Date) -> String {
        let metric = Self.objectiveMetric(view)
        let rows = Self.trialLines(trials, metric: metric, now: now)
        var lines: [String] = []
        let status = "Status:     \(view.status) (\(view.reason)): \(view.message)"
        let events = (view.events ?? []).map(eventLine)
        if shownStatus == nil {
            let latest = min(15, trials.count)
            lines = describe(view, events: 5).components(separatedBy: "\n")
            lines.append("Trials (latest \(latest) of \(trials.count)):")
            lines += rows.suffix(latest)
        } else {
            lines += events.filter { !shownEvents.contains($0) }
            for (trial, row) in zip(trials, rows) where shownTrials[trial.name] != Self.changeKey(trial, metric: metric) {
                lines.append(row)
            }
            // Last: the status follows from what came before it.
            if status != shownStatus { lines.append(status) }
        }
        shownStatus = status
        shownEvents.formUnion(events)
        for trial in trials { shownTrials[trial.name] = Self.changeKey(trial, metric: metric) }
        return lines.map { $0 + "\n" }.joined()
    }

    static func objectiveMetric(_ view: ExperimentView) -> String {
        String(view.objective.split(separator: " ").last ?? "")
    }

    /// What, when it changes, makes a trial's line printed again.
    static func changeKey(_ trial: TrialRecord, metric: String) -> String {
        "\(trial.state.rawValue) \(objectiveText(trial, metric: metric))"
    }

    /// A line per trial, in columns: name, state, objective (a running one's latest), time (so far,
    /// for a running one), parameters.
    static func trialLines(_ trials: [TrialRecord], metric: String, now: Date) -> [String] {
        let rows = trials.map { trial -> [String] in
            let time: String
            if let start = trial.startedAt {
                time = durationText((trial.completedAt ?? now).timeIntervalSince(start))
            } else {
                time = "-"
            }
            return [trial.name, trial.state.rawValue, objectiveText(trial, metric: metric), time, assignmentText(trial.assignments)]
        }
        guard !rows.isEmpty else { return [] }
        return table(["", "", "", "", ""], rows).components(separatedBy: "\n").dropFirst().map { "  " + $0 }
    }
}
