import Foundation
import Knob
import Testing

/// `knob watch`: in an 80×24 terminal, one screen redrawn in place, with the status on it and no
/// line wrapped; into a pipe, the picture once and then only what changed.
@Suite struct WatchScreenTests {
    static let experiment = "watch-fits-an-eighty-column-terminal"

    /// The first 20 trials report and end at once; later ones report 0.5 and 0.625, then wait for `go`.
    static let trainer = """
        import os, sys, time
        folder, trial = sys.argv[1], os.environ["KNOB_TRIAL"]
        open(os.path.join(folder, "started-" + trial), "w").close()
        print("accuracy=0.5", flush=True)
        if len([f for f in os.listdir(folder) if f.startswith("started-")]) > 20:
            print("accuracy=0.625", flush=True)
            while not os.path.exists(os.path.join(folder, "go")):
                time.sleep(0.02)
        print("accuracy=0.75", flush=True)
        """

    static func spec(folder: String) -> String {
        """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: \(experiment)}
        spec:
          objective: {type: maximize, objectiveMetricName: accuracy}
          algorithm: {algorithmName: random}
          maxTrialCount: 24
          parallelTrialCount: 2
          parameters:
            - {name: learning_rate, parameterType: double, feasibleSpace: {min: "0.01", max: "0.05"}}
            - {name: momentum, parameterType: double, feasibleSpace: {min: "0.5", max: "0.99"}}
          trialTemplate:
            command: [python3, \(folder)/trainer.py, \(folder), "--lr=${trialParameters.learning_rate}", "--m=${trialParameters.momentum}"]
        """
    }

    /// A folder with the experiment running under `knob run`, its 20 first trials ended and 2 held.
    static func running() async throws -> (dir: String, run: any RunningTrial) {
        let dir = makeTemporaryDirectory()
        try write(trainer, to: "\(dir)/trainer.py")
        try write(spec(folder: dir), to: "\(dir)/spec.yaml")
        let run = try await LocalRunner().start(TrialLaunch(
            experimentName: "tests", trialName: "run", argv: [knobExecutable, "run", "-f", "\(dir)/spec.yaml", "--home", "\(dir)/home"],
            workingDirectory: dir, environment: [:], logPath: "\(dir)/run.log", trialDirectory: "\(dir)/run"))
        for _ in 0..<1200 where !FileManager.default.fileExists(atPath: "\(dir)/started-\(experiment)-22") {
            try await Task.sleep(for: .milliseconds(50))
        }
        return (dir, run)
    }

    @Test func inATerminalTheScreenFitsAndKeepsTheStatus() async throws {
        let (dir, run) = try await Self.running()
        defer { Task { await run.terminate(grace: .seconds(5)) } }
        let terminal = try await TerminalScreen.start([knobExecutable, "watch", Self.experiment, "--home", "\(dir)/home", "--interval", "0.2"], in: dir)
        defer { Task { await terminal.close() } }
        let name = Self.experiment
        // Both held trials running, with their latest objective.
        let screen = try await terminal.waitFor("the two held trials running") { lines in
            lines.filter { $0.contains("Running") && $0.contains("0.625 (2 reports)") }.count == 2
        }
        #expect(screen[0] == "Name:       \(name)" && screen[1].hasPrefix("Status:     Running"), "\(screen.joined(separator: "\n"))")
        #expect(screen.filter { $0.hasPrefix("Name:") }.count == 1, "drawn over, not scrolled:\n\(screen.joined(separator: "\n"))")
        #expect(screen.contains { $0.hasPrefix("Trials (latest ") && $0.hasSuffix(" of 22):") }, "\(screen.joined(separator: "\n"))")
        let joined = try await terminal.text(joined: true)
        #expect(joined.allSatisfy { $0.count < TerminalScreen.columns }, "a line wrapped:\n\(joined.joined(separator: "\n"))")
        // The rows are cut at the width, and say so.
        // (Which two trials are held depends on which started last, not on their numbers.)
        #expect(screen.contains { $0.hasPrefix("  \(name)-2") && $0.contains("  Running  ") && $0.hasSuffix("…") }, "\(screen.joined(separator: "\n"))")

        // Redrawn as it changes; at the end the screen still starts with the experiment.
        try write("", to: "\(dir)/go")
        let end = try await terminal.waitFor("the end") { $0.contains("[exit 0]") }
        // (The shell's line under it may have scrolled the first line away.)
        #expect(end.filter { $0.hasPrefix("Status:") } == ["Status:     Succeeded (MaxTrialsReached): all 24 trials have ended"]
                && end.prefix(2).contains { $0.hasPrefix("Status:") }, "\(end.joined(separator: "\n"))")
        await terminal.close()
    }

    @Test func intoAPipeThePictureOnceThenTheChanges() async throws {
        let (dir, run) = try await Self.running()
        defer { Task { await run.terminate(grace: .seconds(5)) } }
        let watch = try await LocalRunner().start(TrialLaunch(
            experimentName: "tests", trialName: "watch", argv: [knobExecutable, "watch", Self.experiment, "--home", "\(dir)/home", "--interval", "0.1"],
            workingDirectory: dir, environment: [:], logPath: "\(dir)/watch.log", trialDirectory: "\(dir)/watch"))
        var seen = ""
        for _ in 0..<1200 {
            seen = (try? String(contentsOfFile: "\(dir)/watch.log", encoding: .utf8)) ?? ""
            if seen.contains("0.625 (2 reports)") { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        // Several refreshes with nothing new: nothing more is printed.
        try await Task.sleep(for: .milliseconds(500))
        try write("", to: "\(dir)/go")
        _ = await watch.wait()
        let output = try String(contentsOfFile: "\(dir)/watch.log", encoding: .utf8)
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("Name:") }.count == 1 && lines.filter { $0.hasPrefix("Trials (latest") }.count == 1, "\(output)")
        #expect(!output.contains("\u{1B}"), "\(output)")
        // Each trial that ended after the picture is one line more, with its value.
        for n in 21...24 {
            let ended = lines.filter { $0.hasPrefix("  \(Self.experiment)-\(n) ") && $0.contains("Succeeded") }
            #expect(ended.count == 1 && ended[0].contains("0.75"), "\(Self.experiment)-\(n):\n\(output)")
        }
        #expect(lines.filter { $0.hasPrefix("  \(Self.experiment)-1 ") }.count <= 1, "an unchanged trial is not printed again:\n\(output)")
        #expect(lines.last?.hasPrefix("Status:     Succeeded") == true, "\(output)")
    }
}
