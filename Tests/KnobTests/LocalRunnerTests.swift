import Foundation
import KnobAlgorithms
import Store
import Testing
@testable import Knob

@Suite struct LocalRunnerTests {
    func launch(_ argv: [String], in dir: String, env: [String: String] = [:]) -> TrialLaunch {
        TrialLaunch(experimentName: "exp", trialName: "exp-1", argv: argv, workingDirectory: dir, environment: env,
                    logPath: "\(dir)/logs/exp-1.log", trialDirectory: "\(dir)/trials/exp-1")
    }

    @Test func outputEnvironmentAndExitCodeReachTheirPlaces() async throws {
        let dir = makeTemporaryDirectory()
        let script = "echo trial=$KNOB_TRIAL katib=$KATIB_TRIAL_NAME exp=$KNOB_EXPERIMENT dir=$KNOB_TRIAL_DIR extra=$EXTRA; pwd; echo oops >&2; read line || echo stdin-empty; exit 3"
        let running = try await LocalRunner().start(launch(["/bin/sh", "-c", script], in: dir, env: ["EXTRA": "yes"]))
        #expect(await running.wait() == .exited(3))
        let log = try String(contentsOfFile: "\(dir)/logs/exp-1.log", encoding: .utf8)
        #expect(log.contains("trial=exp-1 katib=exp-1 exp=exp dir=\(dir)/trials/exp-1 extra=yes"))
        #expect(log.contains("\n\(dir)\n"), "runs in the working directory")
        #expect(log.contains("oops") && log.contains("stdin-empty"))
        #expect(running.handle["pgid"] == running.handle["pid"])
    }

    /// Many trials ending at once, in another order than they started, each learn their own end (one thread
    /// waits for all of them through their pidfds).
    @Test func manyTrialsEndingTogetherEachGetTheirOwnEnd() async throws {
        let dir = makeTemporaryDirectory()
        let runner = LocalRunner()
        var running: [(code: Int32, trial: any RunningTrial)] = []
        for i in 0..<40 {
            let code = Int32(i * 7 % 50)
            var trial = launch(["/bin/sh", "-c", "sleep 0.\((40 - i) % 10); exit \(code)"], in: dir)
            trial = TrialLaunch(experimentName: "exp", trialName: "exp-\(i)", argv: trial.argv, workingDirectory: dir, environment: [:],
                                logPath: "\(dir)/logs/exp-\(i).log", trialDirectory: "\(dir)/trials/exp-\(i)")
            running.append((code, try await runner.start(trial)))
        }
        for (code, trial) in running {
            #expect(await trial.wait() == .exited(code))
        }
    }

    @Test func aSignalIsReportedByName() async throws {
        let dir = makeTemporaryDirectory()
        let running = try await LocalRunner().start(launch(["/bin/sh", "-c", "kill -SEGV $$"], in: dir))
        let exit = await running.wait()
        #expect(exit == .signaled(SIGSEGV))
        #expect(exit.description == "was killed by signal 11 (SIGSEGV)")
    }

    @Test func aMissingProgramFailsToStartWithAHint() async throws {
        let dir = makeTemporaryDirectory()
        await #expect {
            _ = try await LocalRunner().start(launch(["/no/such/program", "--x=1"], in: dir))
        } throws: { error in
            "\(error)" == "cannot start /no/such/program: No such file or directory (is it installed and on PATH?)"
        }
        var elsewhere = launch(["true"], in: dir)
        elsewhere.workingDirectory = "\(dir)/missing"
        await #expect {
            _ = try await LocalRunner().start(elsewhere)
        } throws: { error in
            "\(error)" == "working directory \(dir)/missing does not exist"
        }
    }

    @Test func terminateKillsTheWholeGroupEvenWhenTERMIsIgnored() async throws {
        let dir = makeTemporaryDirectory()
        let script = "trap '' TERM; sleep 300 & echo $! > grandchild.pid; while true; do sleep 1; done"
        let running = try await LocalRunner().start(launch(["/bin/sh", "-c", script], in: dir))
        #expect(await eventually { readPID("\(dir)/grandchild.pid") != nil })
        let grandchild = try #require(readPID("\(dir)/grandchild.pid"))
        #expect(processIsRunning(grandchild))
        await running.terminate(grace: .milliseconds(300))
        #expect(await running.wait() == .signaled(SIGKILL))
        #expect(await eventually { !processIsRunning(grandchild) }, "the grandchild \(grandchild) survived")
    }

    @Test func whatATrialLeavesBehindDiesWithIt() async throws {
        let dir = makeTemporaryDirectory()
        let running = try await LocalRunner().start(launch(["/bin/sh", "-c", "sleep 300 & echo $! > orphan.pid; exit 0"], in: dir))
        #expect(await running.wait() == .exited(0))
        let orphan = try #require(readPID("\(dir)/orphan.pid"))
        #expect(await eventually { !processIsRunning(orphan) }, "the background process \(orphan) survived its trial")
    }
}

@Suite struct ControllerTests {
    func spec(_ command: String, timeout: Double? = nil, extra: String = "") throws -> ExperimentSpec {
        try ExperimentSpec.parse("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: ctl}
            spec:
              objective: {type: minimize, objectiveMetricName: loss, goal: 0.001}
              algorithm: {algorithmName: grid}
              parallelTrialCount: 2
              maxTrialCount: 2
              parameters:
                - {name: x, parameterType: int, feasibleSpace: {min: "1", max: "2"}}
              trialTemplate:
                command: [/bin/sh, -c, '\(command)', sh, "${trialParameters.x}"]
                \(timeout.map { "timeoutSeconds: \($0)" } ?? "")
            \(extra)
            """)
    }

    func run(_ spec: ExperimentSpec, home: KnobHome) async throws -> (ExperimentRecord, [TrialRecord], Store) {
        let store = try home.openStore()
        let (experiment, _) = try await Engine.prepare(specText: "", spec: spec, specDirectory: home.path, home: home, store: store, replace: false)
        let final = try await ExperimentController(store: store, home: home, spec: spec, runner: LocalRunner(), stop: StopSignal()).run(experiment)
        return (final, try await store.trials(of: final.id!), store)
    }

    @Test func aTimeoutKillsTheTrialsWholeProcessGroup() async throws {
        let home = KnobHome(makeTemporaryDirectory())
        let script = #"sleep 300 & echo $! > "$KNOB_TRIAL_DIR/grandchild.pid"; echo loss=5; sleep 300"#
        let (experiment, trials, _) = try await run(try spec(script, timeout: 1), home: home)
        #expect(trials.map(\.state) == [.failed, .failed])
        #expect(trials.allSatisfy { $0.reason == "DeadlineExceeded" && $0.message.contains("timeoutSeconds 1s") })
        #expect(trials[0].observation.first?.latest == 5, "reports before the timeout are kept")
        for trial in trials {
            let pid = try #require(readPID(home.trialDirectory(experiment: "ctl", trial: trial.name) + "/grandchild.pid"))
            #expect(await eventually { !processIsRunning(pid) }, "grandchild \(pid) of \(trial.name) survived the timeout")
        }
        #expect(experiment.status == .succeeded && experiment.reason == "MaxTrialsReached")
    }

    @Test func reportsAreRecordedWhileTheTrialRunsAndTheGoalEndsTheExperiment() async throws {
        let home = KnobHome(makeTemporaryDirectory())
        // Trial x=1 reaches the goal at once; trial x=2 would run for minutes and is killed.
        let script = "if [ $1 = 1 ]; then echo loss=0.5; echo loss=0.0001; else echo loss=9; sleep 300; fi"
        let (experiment, trials, store) = try await run(try spec(script), home: home)
        #expect(experiment.status == .succeeded && experiment.reason == "GoalReached")
        #expect(trials.map(\.state) == [.succeeded, .killed])
        #expect(trials[0].objectiveValue == 0.0001)
        #expect(try await store.metrics(ofTrial: trials[0].id!).map(\.value) == [0.5, 0.0001])
        #expect(try await store.metrics(ofTrial: trials[1].id!).map(\.value) == [9], "the killed trial's reports are kept")
    }
}

@Suite struct SuggesterStateThroughTheStoreTests {
    @Test func cmaesGivesTheSameNextSuggestionsFromTheStoreAsFromMemory() async throws {
        let spec = try ExperimentSpec.parse("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: restart}
            spec:
              objective: {type: maximize, objectiveMetricName: score}
              algorithm: {algorithmName: cmaes, algorithmSettings: [{name: random_state, value: "4"}]}
              parallelTrialCount: 3
              parameters:
                - {name: lr, parameterType: double, feasibleSpace: {min: "0.0001", max: "0.1", distribution: logUniform}}
                - {name: layers, parameterType: int, feasibleSpace: {min: "1", max: "6"}}
                - {name: opt, parameterType: categorical, feasibleSpace: {list: [sgd, adam, rmsprop]}}
              trialTemplate:
                command: [train, "${trialParameters.lr}", "${trialParameters.layers}", "${trialParameters.opt}"]
            """)
        let home = KnobHome(makeTemporaryDirectory())
        let store = try home.openStore()
        let (experiment, _) = try await Engine.prepare(specText: "", spec: spec, specDirectory: home.path, home: home, store: store, replace: false)
        let controller = ExperimentController(store: store, home: home, spec: spec, runner: LocalRunner(), stop: StopSignal())
        let space = spec.searchSpace
        let suggester = try SuggesterRegistry.make("cmaes", context: SuggesterContext(
            space: space, settings: spec.algorithm.settingsByName, seed: UInt64(bitPattern: experiment.seed)))
        var memory = History()
        var records: [TrialRecord] = []
        // 30 trials, 3 at a time; every fifth fails; the score peaks at lr 0.01, 3 layers, adam.
        while records.count < 30 {
            let next = try suggester.suggest(count: 3 - memory.pending.count, history: memory)
            let created = try await store.createTrials(next.map { s in
                NewTrial(assignments: space.parameters.map { ParameterAssignment(name: $0.name, value: s.assignment[$0.name]!.description) },
                         suggesterMetadata: s.metadata)
            }, for: experiment)
            records += created
            memory.trials += next.map { .init(assignment: $0.assignment, outcome: .pending, metadata: $0.metadata) }
            let oldest = memory.trials.firstIndex { $0.outcome == .pending }!
            let a = memory.trials[oldest].assignment
            let score = -abs(log10(a["lr"]!.numericValue!) + 2) - abs(a["layers"]!.numericValue! - 3) - (a["opt"] == .string("adam") ? 0 : 1)
            if oldest % 5 == 4 {
                memory.trials[oldest].outcome = .failed
                try await store.finishTrial(records[oldest].id!, TrialEnd(state: .failed, reason: "Error", message: "exited with code 1"))
            } else {
                memory.trials[oldest].outcome = .completed(-score)
                try await store.finishTrial(records[oldest].id!, TrialEnd(state: .succeeded, reason: "ok", message: "", objectiveValue: score))
            }
        }
        // As after a restart: the history comes back from SQLite, the suggester is new.
        let reloaded = try await controller.history(experiment.id!, space: space)
        let fresh = try SuggesterRegistry.make("cmaes", context: SuggesterContext(
            space: space, settings: spec.algorithm.settingsByName, seed: UInt64(bitPattern: experiment.seed)))
        let expected = try suggester.suggest(count: 3, history: memory)
        #expect(try fresh.suggest(count: 3, history: reloaded) == expected)
        #expect(!expected.isEmpty || !memory.pending.isEmpty)
        CMAESSuggester.clearReplayCheckpoints()
        #expect(try fresh.suggest(count: 3, history: reloaded) == expected, "also when the whole history is replayed")
    }
}
