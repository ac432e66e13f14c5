import Foundation
import Testing

/// `knob run` in a terminal: the trials' lines scroll, and one status line under them is redrawn
/// in place, cut to the terminal's width; it is gone when the experiment ends.
@Suite struct ProgressLineTests {
    /// Reports 0.5 and 0.625, then waits for the test to let it report 0.75 and end.
    static let heldTrainer = """
        import os, sys, time
        folder = sys.argv[1]
        print("accuracy=0.5", flush=True)
        print("accuracy=0.625", flush=True)
        while not os.path.exists(os.path.join(folder, "go-" + os.environ["KNOB_TRIAL"])):
            time.sleep(0.02)
        print("accuracy=0.75", flush=True)
        """

    static func spec(folder: String) -> String {
        """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: progress-in-a-terminal}
        spec:
          objective: {type: maximize, objectiveMetricName: accuracy}
          algorithm: {algorithmName: random}
          maxTrialCount: 3
          parallelTrialCount: 1
          parameters:
            - {name: lr, parameterType: double, feasibleSpace: {min: "0.01", max: "0.05"}}
          trialTemplate:
            command: [python3, \(folder)/trainer.py, \(folder), "--lr=${trialParameters.lr}"]
        """
    }

    static func statusLine(_ screen: [String]) -> String? {
        screen.last { $0.contains(" done, ") }
    }

    @Test func aStatusLineShowsDoneRunningBestAndTimeAndFitsTheWidth() async throws {
        let dir = makeTemporaryDirectory()
        try write(Self.heldTrainer, to: "\(dir)/trainer.py")
        try write(Self.spec(folder: dir), to: "\(dir)/spec.yaml")
        let terminal = try await TerminalScreen.start([knobExecutable, "run", "-f", "\(dir)/spec.yaml", "--home", "\(dir)/home"], in: dir)
        defer { Task { await terminal.close() } }
        let trial = "progress-in-a-terminal"

        // The first trial runs: its step and latest value, nothing ended yet, so no best and no estimate.
        let first = try await terminal.waitFor("the first trial's second report") { Self.statusLine($0)?.contains("step 2 0.625") == true }
        let status = try #require(Self.statusLine(first))
        #expect(status.hasPrefix("0/3 done, ") && status.contains(", ETA - | no best yet | \(trial)-1 step 2 0.625"), "\(status)")
        #expect(first.contains { $0.contains("\(trial)-1  started") }, "the trials' own lines stay:\n\(first.joined(separator: "\n"))")

        // One ended: its line above, and the status line with the best, an estimate, and the next trial
        // (cut to the width, which the whole line would pass).
        try write("", to: "\(dir)/go-\(trial)-1")
        // (Between the first's end and the second's start the line says "none running": wait past that.)
        let second = try await terminal.waitFor("the second trial running") { screen in
            Self.statusLine(screen).map { $0.hasPrefix("1/3 done") && !$0.contains("none running") } ?? false
        }
        let next = try #require(Self.statusLine(second))
        #expect(next.contains(#/, ETA [\dhms ]+ \| best 0\.75 \(progress-in-a-terminal-1\) \| /#), "\(next)")
        // Whatever the times take (a loaded machine's are longer), the next trial's part starts with its name, cut.
        let after = next.components(separatedBy: "(\(trial)-1) | ").last.map { String($0.dropLast()) } ?? ""
        #expect(!after.isEmpty && "\(trial)-".hasPrefix(after) || after.hasPrefix("\(trial)-"), "\(next)")
        #expect(next.count == TerminalScreen.columns - 1 && next.hasSuffix("…"), "\(next)")
        #expect(second.contains { $0.hasPrefix("[1/3] \(trial)-1  Succeeded  accuracy=0.75") })
        let joined = try await terminal.text(joined: true)
        #expect(joined.allSatisfy { $0.count <= TerminalScreen.columns || !$0.contains(" done, ") }, "the status line wrapped:\n\(joined.joined(separator: "\n"))")

        for n in 2...3 { try write("", to: "\(dir)/go-\(trial)-\(n)") }
        let end = try await terminal.waitFor("the end") { $0.contains("[exit 0]") }
        #expect(Self.statusLine(end) == nil, "the status line is erased at the end:\n\(end.joined(separator: "\n"))")
        #expect(end.contains { $0.hasPrefix("[3/3] \(trial)-3  Succeeded") } && end.contains { $0.hasPrefix("best trial \(trial)-") },
                "\(end.joined(separator: "\n"))")
        await terminal.close()
    }

    @Test func withoutATerminalEachTrialIsOneLineAndNothingIsRedrawn() async throws {
        let dir = makeTemporaryDirectory()
        try write(Self.heldTrainer, to: "\(dir)/trainer.py")
        try write(Self.spec(folder: dir), to: "\(dir)/spec.yaml")
        for n in 1...3 { try write("", to: "\(dir)/go-progress-in-a-terminal-\(n)") }
        let run = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", "\(dir)/home"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(!run.stdout.contains("\u{1B}") && !run.stdout.contains("\r") && !run.stdout.contains(" done, "), "\(run.stdout)")
        let ended = run.stdout.split(separator: "\n").filter { $0.hasPrefix("[") }
        #expect(ended.map { String($0.prefix(5)) } == ["[1/3]", "[2/3]", "[3/3]"], "\(run.stdout)")
    }
}
