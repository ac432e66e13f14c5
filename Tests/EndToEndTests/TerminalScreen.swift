import Foundation
import Knob
import Testing

/// A command running in a pseudo-terminal of 80×24 (a tmux session on its own server), and what
/// its screen shows.
struct TerminalScreen {
    let socket: String
    static let columns = 80, rows = 24

    /// Starts `arguments` (the first is the program) in `directory`; when it ends, the pane shows
    /// `[exit N]` and stays open. Should a test end without closing it, the program and then the
    /// session end by themselves after a few minutes.
    static func start(_ arguments: [String], in directory: String) async throws -> TerminalScreen {
        let screen = TerminalScreen(socket: "knob-test-\(UUID().uuidString.prefix(8))")
        let command = "cd \(quoted(directory)) && timeout --foreground 300 " + arguments.map(quoted).joined(separator: " ")
            + "; echo \"[exit $?]\"; sleep 300"
        let started = try await screen.tmux(["new-session", "-d", "-x", "\(columns)", "-y", "\(rows)", "/bin/sh", "-c", command])
        guard started.status == 0 else { throw TerminalError.tmux(started.stderr) }
        return screen
    }

    /// The visible screen, a line per row, without the spaces at the ends of lines. With `joined`,
    /// a line the terminal wrapped is one line again.
    func text(joined: Bool = false) async throws -> [String] {
        let result = try await tmux(["capture-pane", "-p"] + (joined ? ["-J"] : []))
        return result.stdout.components(separatedBy: "\n").map { $0.replacingOccurrences(of: #" +$"#, with: "", options: .regularExpression) }
    }

    /// The screen once `condition` holds for it; fails after about a minute with what it showed.
    @discardableResult
    func waitFor(_ what: String, sourceLocation: SourceLocation = #_sourceLocation,
                 _ condition: ([String]) -> Bool) async throws -> [String] {
        var lines: [String] = []
        for _ in 0..<1200 {
            lines = try await text()
            if condition(lines) { return lines }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the screen never showed \(what):\n\(lines.joined(separator: "\n"))", sourceLocation: sourceLocation)
        throw TerminalError.timedOut(what)
    }

    /// Types `keys`: text, or tmux's names of keys (`Enter`, `Tab`, `C-u`).
    func send(_ keys: String...) async throws {
        _ = try await tmux(["send-keys"] + keys)
    }

    /// Ends the session and its programs.
    func close() async {
        _ = try? await tmux(["kill-server"])
    }

    /// Runs tmux through knob's local runner, which starts it with no signal blocked (tmux's server
    /// needs SIGCHLD) and reaps it; what it prints is read from the log.
    private func tmux(_ arguments: [String]) async throws -> CommandResult {
        let dir = makeTemporaryDirectory("knob-tmux")
        let run = try await LocalRunner().start(TrialLaunch(
            experimentName: "terminal", trialName: "tmux", argv: ["/usr/bin/tmux", "-L", socket, "-f", "/dev/null"] + arguments,
            workingDirectory: dir, environment: [:], logPath: "\(dir)/output", trialDirectory: dir))
        let exit = await run.wait()
        let output = (try? String(contentsOfFile: "\(dir)/output", encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: dir)
        guard case .exited(let status) = exit else { return CommandResult(status: -1, stdout: output, stderr: "\(exit)") }
        return CommandResult(status: status, stdout: output, stderr: output)
    }

    private static func quoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    enum TerminalError: Error {
        case tmux(String)
        case timedOut(String)
    }
}
