import Foundation
import Knob
import Store
import Testing

/// What the CLI says when something is wrong: one line on stderr, the same whatever the data
/// source, saying what to do; usage errors exit 2.
@Suite(.serialized) struct CLIMessagesTests {
    static let spec = """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: said}
        spec:
          objective: {type: maximize, objectiveMetricName: accuracy}
          algorithm: {algorithmName: random}
          maxTrialCount: 1
          parallelTrialCount: 1
          parameters:
            - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
          trialTemplate:
            command: [/bin/echo, "accuracy=${trialParameters.x}"]
        """

    @Test func aMissingTrialIsTheSameOneLineWithOrWithoutKnobd() async throws {
        let dir = makeTemporaryDirectory()
        let home = "\(dir)/home"
        try write(Self.spec, to: "\(dir)/said.yaml")
        let ran = try await knob(["run", "-f", "\(dir)/said.yaml", "--home", home])
        #expect(ran.status == 0, "\(ran.stderr)")
        let offline = try await knob(["logs", "said", "said-99", "--home", home])
        let daemon = try await DaemonProcess.start(home: home)
        defer { kill(daemon.pid, SIGKILL) }
        let online = try await knob(["logs", "said", "said-99", "--home", home])
        let expected = "error: experiment said has no trial named said-99; knob trials said lists them"
        for result in [offline, online] {
            #expect(result.status == 1)
            #expect(result.stdout.isEmpty, "nothing on stdout: \(result.stdout)")
            #expect(result.stderr.split(separator: "\n").filter { $0.hasPrefix("error") } == [Substring(expected)], "\(result.stderr)")
        }
        let noExperiment = try await knob(["logs", "nope", "nope-1", "--home", home])
        #expect(noExperiment.stderr.contains("error: no experiment named nope; knob list shows the experiments"), "\(noExperiment.stderr)")
        let taken = try await knob(["create", "-f", "\(dir)/said.yaml", "--home", home])
        #expect(taken.status == 1 && taken.stderr.contains("knob delete said"), "\(taken.stderr)")
    }

    @Test func aFolderGivenAsTheSpecSaysSo() async throws {
        let dir = makeTemporaryDirectory()
        let result = try await knob(["run", "-f", dir, "--home", "\(dir)/home"])
        #expect(result.status == 1)
        #expect(result.stderr == "error: cannot read \(dir): it is a folder; give the spec file in it, e.g. \(dir)/experiment.yaml\n", "\(result.stderr)")
        #expect(!result.stderr.contains("NSCocoaErrorDomain"))
    }

    @Test func wrongUsageExitsTwo() async throws {
        for arguments in [["edit", "x", "--max-trials", "-3"], ["run"], ["best", "a", "b", "c"], ["edit", "x"]] {
            let result = try await knob(arguments)
            #expect(result.status == 2, "\(arguments): \(result.status) \(result.stderr)")
            #expect(result.stderr.hasPrefix("error: "), "\(arguments): \(result.stderr)")
        }
    }
}

@Suite struct VersionTests {
    @Test func knobAndKnobdSayTheirVersion() async throws {
        let cli = try await knob(["--version"])
        let daemon = try await runToEnd(DaemonProcess.executable, ["--version"])
        for result in [cli, daemon] {
            #expect(result.status == 0)
            #expect(result.stdout == KnobVersion.current + "\n", "\(result.stdout)")
        }
    }
}

@Suite struct TypoTests {
    @Test func aMistypedCommandGetsASuggestion() async throws {
        for (word, hint) in [("lsit", "did you mean list?"), ("trails", "did you mean trials?"), ("zzz", "knob --help lists them")] {
            let result = try await knob([word, "mnist"])
            #expect(result.status == 2)
            #expect(result.stderr.hasPrefix("error: knob has no command \(word)") && result.stderr.contains(hint), "\(result.stderr)")
        }
        #expect(try await knob(["help", "run"]).status == 0)
    }
}

@Suite struct KilledTrialsNoteTests {
    @Test func getSaysThatKilledTrialsUseTheBudget() async throws {
        let home = makeTemporaryDirectory()
        let store = try KnobHome(home).openStore()
        let text = CLIMessagesTests.spec.replacingOccurrences(of: "maxTrialCount: 1", with: "maxTrialCount: 4")
        let experiment = try await store.createExperiment(try Engine.newRecord(specText: text, spec: try ExperimentSpec.parse(text), directory: home))
        let trials = try await store.createTrials([NewTrial(assignments: [], suggesterMetadata: [:]), NewTrial(assignments: [], suggesterMetadata: [:])],
                                                  for: experiment)
        try await store.finishTrial(trials[0].id!, TrialEnd(state: .killed, reason: "Stopped", message: "stopped by a user"))
        let result = try await knob(["get", "said", "--home", home])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("1 killed trial counts toward maxTrialCount, as in Katib"), "\(result.stdout)")
    }
}

@Suite(.serialized) struct FailureReasonTests {
    static let spec = CLIMessagesTests.spec.replacingOccurrences(of: "name: said", with: "name: fails").replacingOccurrences(
        of: #"command: [/bin/echo, "accuracy=${trialParameters.x}"]"#,
        with: #"command: [/bin/sh, -c, 'echo "epoch 1 accuracy=0.5"; echo "ValueError: lr $0 is too large" >&2; exit 1', "${trialParameters.x}"]"#)

    @Test func theTableSaysWhyAndDescribeSaysItAll() async throws {
        let dir = makeTemporaryDirectory()
        let home = "\(dir)/home"
        try write(Self.spec, to: "\(dir)/fails.yaml")
        _ = try await knob(["run", "-f", "\(dir)/fails.yaml", "--home", home])
        var outputs: [(String, String)] = []
        outputs.append(((try await knob(["trials", "fails", "--home", home])).stdout, (try await knob(["describe", "fails", "fails-1", "--home", home])).stdout))
        let daemon = try await DaemonProcess.start(home: home)
        defer { kill(daemon.pid, SIGKILL) }
        outputs.append(((try await knob(["trials", "fails", "--home", home])).stdout, (try await knob(["describe", "fails", "fails-1", "--home", home])).stdout))
        for (table, described) in outputs {
            let row = try #require(table.split(separator: "\n").first { $0.hasPrefix("fails-1") })
            #expect(row.contains("exited with code 1; last output: ValueError: lr") && row.contains("is too large"), "\(table)")
            #expect(described.contains("State:      Failed"), "\(described)")
            #expect(described.contains("accuracy  min 0.5  max 0.5  latest 0.5  (1 reports)"), "\(described)")
            #expect(described.contains("Output (last 20 lines of knob logs fails fails-1):\n  epoch 1 accuracy=0.5\n  ValueError: lr"), "\(described)")
        }
        #expect(outputs[0].1 == outputs[1].1, "the same with and without knobd")
        let missing = try await knob(["describe", "fails", "fails-9", "--home", home])
        #expect(missing.status == 1 && missing.stderr.contains("experiment fails has no trial named fails-9; knob trials fails lists them"))
    }
}

@Suite(.serialized) struct StopMessageTests {
    @Test func stoppingAnExperimentThatKnobRunDrivesSaysWhoAndHow() async throws {
        let dir = makeTemporaryDirectory()
        let home = "\(dir)/home"
        try write(CLIMessagesTests.spec.replacingOccurrences(of: "/bin/echo, \"accuracy=${trialParameters.x}\"",
                                                             with: "/bin/sh, -c, \"sleep 300; echo accuracy=${trialParameters.x}\""),
                  to: "\(dir)/slow.yaml")
        let run = try await LocalRunner().start(TrialLaunch(
            experimentName: "tests", trialName: "run", argv: [knobExecutable, "run", "-f", "\(dir)/slow.yaml", "--home", home],
            workingDirectory: dir, environment: [:], logPath: "\(dir)/run.log", trialDirectory: "\(dir)/run"))
        defer { kill(-Int32(run.handle["pgid"] ?? run.handle["pid"]!)!, SIGKILL) }
        let runPid = run.handle["pid"]!
        var driven = false
        for _ in 0..<100 where !driven {
            try await Task.sleep(for: .milliseconds(100))
            driven = KnobHome(home).isDriven(experiment: "said")
        }
        #expect(driven)
        let daemon = try await DaemonProcess.start(home: home)
        defer { kill(daemon.pid, SIGKILL) }
        let stop = try await knob(["stop", "said", "--home", home])
        #expect(stop.status == 1)
        #expect(stop.stderr.contains("experiment said is run by a knob run process (pid \(runPid)), not by knobd: stop it with Ctrl-C where it runs, or kill -INT \(runPid)"),
                "\(stop.stderr)")
    }
}
