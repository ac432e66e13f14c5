import Foundation
import Knob
import Store
import Testing

/// A fast trainer: a noisy-free bowl whose best is lr=0.03, reported per epoch like the MNIST trainer.
let fastTrainer = """
    import sys
    args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
    lr, epochs = float(args["lr"]), int(args["epochs"])
    for epoch in range(1, epochs + 1):
        accuracy = 0.95 - (lr - 0.03) ** 2 * 100 - 0.05 / epoch
        print(f"2026-01-01T00:00:0{epoch}Z INFO     Epoch {epoch}. accuracy={accuracy:.6f} - loss={1 - accuracy:.6f}", flush=True)
    """

func tinySpec(name: String, algorithm: String = "random", extra: String = "") -> String {
    """
    apiVersion: kubeflow.org/v1beta1
    kind: Experiment
    metadata:
      name: \(name)
    spec:
      objective:
        type: maximize
        objectiveMetricName: accuracy
        additionalMetricNames: [loss]
      algorithm:
        algorithmName: \(algorithm)
      parallelTrialCount: 2
      maxTrialCount: 6
      parameters:
        - name: lr
          parameterType: double
          feasibleSpace: {min: "0.01", max: "0.05"}
        - name: epochs
          parameterType: int
          feasibleSpace: {min: "1", max: "3"}
      trialTemplate:
        trialParameters:
          - {name: learningRate, reference: lr}
          - {name: epochs, reference: epochs}
        command: [python3, trainer.py, "--lr=${trialParameters.learningRate}", "--epochs=${trialParameters.epochs}"]
    \(extra)
    """
}

@Suite struct KnobRunTests {
    @Test func runTunesATinyExperimentAndBestReadsItBackFromTheStore() async throws {
        let dir = makeTemporaryDirectory()
        try write(fastTrainer, to: "\(dir)/trainer.py")
        try write(tinySpec(name: "tiny"), to: "\(dir)/spec.yaml")
        let home = "\(dir)/home"

        let run = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", home, "-o", "json"])
        #expect(run.status == 0, "knob run failed: \(run.stderr)")
        #expect(run.stderr.contains("experiment tiny succeeded (MaxTrialsReached)"))
        #expect(run.stderr.components(separatedBy: "Succeeded  accuracy=").count - 1 == 6, "a progress line per trial:\n\(run.stderr)")
        let optimal = try #require(try json(run.stdout) as? [String: Any])
        let bestName = try #require(optimal["bestTrialName"] as? String)
        let assignments = try #require(optimal["parameterAssignments"] as? [[String: String]])
        #expect(assignments.map { $0["name"] } == ["lr", "epochs"])
        let metrics = try #require((optimal["observation"] as? [String: Any])?["metrics"] as? [[String: String]])
        #expect(metrics.map { $0["name"] } == ["accuracy", "loss"])

        // The store gives the same answer later, in every format.
        let best = try await knob(["best", "tiny", "--home", home])
        #expect(best.status == 0)
        #expect(best.stdout == run.stdout)
        let args = try await knob(["best", "tiny", "--home", home, "--format", "args"])
        #expect(args.stdout.hasPrefix("--lr=\(assignments[0]["value"]!) --epochs=\(assignments[1]["value"]!)"))
        let env = try await knob(["best", "tiny", "--home", home, "--format", "env"])
        #expect(env.stdout.contains("LR=\(assignments[0]["value"]!)\nEPOCHS="))

        // It is the best of the trials, and every trial kept its epoch-by-epoch reports.
        let trials = try #require(try json(try await knob(["trials", "tiny", "--home", home, "-o", "json"]).stdout) as? [[String: Any]])
        #expect(trials.count == 6)
        #expect(trials.allSatisfy { $0["state"] as? String == "Succeeded" })
        let values = trials.compactMap { $0["objectiveValue"] as? Double }
        let bestValue = trials.first { $0["name"] as? String == bestName }?["objectiveValue"] as? Double
        #expect(bestValue == values.max())
        let latest = metrics.first { $0["name"] == "accuracy" }?["max"]
        #expect(latest.flatMap(Double.init) == bestValue, "objective is the max of accuracy (Katib's default for maximize)")

        let list = try await knob(["list", "--home", home])
        #expect(list.stdout.contains("tiny") && list.stdout.contains("Succeeded"))
        let get = try await knob(["get", "tiny", "--home", home])
        #expect(get.stdout.contains("Status:     Succeeded (MaxTrialsReached)") && get.stdout.contains("Best trial: \(bestName)"))

        // Running the same finished experiment again says what to do instead.
        let again = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", home])
        #expect(again.status == 1 && again.stderr.contains("already ran to the end") && again.stderr.contains("--replace"))
        let replaced = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", home, "--replace"])
        #expect(replaced.status == 0, "\(replaced.stderr)")
    }

    @Test func failedTrialsSayWhyAndTheExperimentGoesOnUntilMaxFailedTrialCount() async throws {
        let dir = makeTemporaryDirectory()
        try write("#!/bin/sh\necho accuracy=0.5\n", to: "\(dir)/ok.sh", executable: true)
        try write("#!/bin/sh\necho 'loading data'\necho 'ValueError: bad shape' >&2\nexit 3\n", to: "\(dir)/exit3.sh", executable: true)
        try write("#!/bin/sh\necho 'about to crash'\nkill -KILL $$\n", to: "\(dir)/signal.sh", executable: true)
        try write("#!/bin/sh\necho 'training done, forgot to print the metric'\n", to: "\(dir)/nometrics.sh", executable: true)
        try write("#!/bin/sh\necho accuracy=0.9\n", to: "\(dir)/never.sh", executable: true)
        try write("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: failures}
            spec:
              objective: {type: maximize, objectiveMetricName: accuracy}
              algorithm: {algorithmName: grid}
              parallelTrialCount: 1
              maxTrialCount: 6
              maxFailedTrialCount: 4
              parameters:
                - name: program
                  parameterType: categorical
                  feasibleSpace: {list: [./ok.sh, ./no-such-program, ./exit3.sh, ./signal.sh, ./nometrics.sh, ./never.sh]}
              trialTemplate:
                command: ["${trialParameters.program}"]
            """, to: "\(dir)/spec.yaml")
        let home = "\(dir)/home"
        let run = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", home])
        #expect(run.status == 1, "a failed experiment exits 1")
        #expect(run.stdout.contains("experiment failures failed (MaxFailedTrialsReached): 4 trials failed, maxFailedTrialCount is 4"), "\(run.stdout)")

        let trials = try #require(try json(try await knob(["trials", "failures", "--home", home, "-o", "json"]).stdout) as? [[String: Any]])
        let outcome = trials.map { "\($0["state"]!) \($0["reason"]!)" }
        #expect(outcome == ["Succeeded TrialSucceeded", "Failed StartFailed", "Failed Error", "Failed Signaled", "MetricsUnavailable MetricsUnavailable"])
        let messages = trials.map { $0["message"] as? String ?? "" }
        #expect(messages[1].contains("cannot start ./no-such-program: No such file or directory"))
        #expect(messages[2].hasPrefix("exited with code 3") && messages[2].contains("ValueError: bad shape"))
        #expect(messages[3].hasPrefix("was killed by signal 9 (SIGKILL)") && messages[3].contains("about to crash"))
        #expect(messages[4].hasPrefix("exited with code 0 but never reported accuracy=<number>") && messages[4].contains("forgot to print"))
        #expect(trials[2]["exitCode"] as? Int == 3)
        // The best is still there for pipelines.
        let best = try await knob(["best", "failures", "--home", home, "--format", "args"])
        #expect(best.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "--program=./ok.sh")
    }

    @Test func validateReportsEveryMistakeWithItsPath() async throws {
        let dir = makeTemporaryDirectory()
        let spec = tinySpec(name: "Bad_Name")
            .replacingOccurrences(of: "min: \"0.01\", max: \"0.05\"", with: "min: \"0.5\", max: \"0.1\"")
            .replacingOccurrences(of: "parallelTrialCount: 2", with: "parallelTrialCount: 7")
        try write(spec, to: "\(dir)/spec.yaml")
        let result = try await knob(["validate", "-f", "\(dir)/spec.yaml"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("the spec has 3 problems"), "\(result.stderr)")
        #expect(result.stderr.contains("metadata.name: \"Bad_Name\" is not a DNS-1123 label"))
        #expect(result.stderr.contains("spec.parallelTrialCount: 7 must not exceed maxTrialCount 6"))
        #expect(result.stderr.contains("spec.parameters[0].feasibleSpace: min 0.5 must be below max 0.1"))
        let asJSON = try await knob(["validate", "-f", "\(dir)/spec.yaml", "-o", "json"])
        let problems = try #require((try json(asJSON.stdout) as? [String: Any])?["problems"] as? [[String: Any]])
        #expect(problems.count == 3)
        try write(tinySpec(name: "good"), to: "\(dir)/good.yaml")
        let good = try await knob(["validate", "-f", "\(dir)/good.yaml"])
        #expect(good.status == 0 && good.stdout.contains("valid experiment good"))
    }

    @Test func validateRenderShowsWhatTheFirstTrialRuns() async throws {
        let dir = makeTemporaryDirectory()
        try write(tinySpec(name: "render"), to: "\(dir)/spec.yaml")
        let local = try await knob(["validate", "-f", "\(dir)/spec.yaml", "--render"])
        #expect(local.status == 0)
        let lines = local.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2 && lines[0].hasPrefix("# trial render-1 with sample parameters: lr="))
        let argv = lines[1].split(separator: " ").map(String.init)
        #expect(argv.count == 4 && argv[0] == "python3" && argv[1] == "trainer.py")
        let lr = try #require(Double(argv[2].replacingOccurrences(of: "--lr=", with: "")))
        let epochs = try #require(Int(argv[3].replacingOccurrences(of: "--epochs=", with: "")))
        #expect((0.01...0.05).contains(lr) && (1...3).contains(epochs))

        try write(katibStyleJob, to: "\(dir)/job.yaml")
        let job = try await knob(["validate", "-f", "\(dir)/job.yaml", "--render"])
        #expect(job.status == 0)
        // What knob would send: parameters substituted, the trial's name, labels and environment added.
        #expect(job.stdout.contains("kind: Job") && job.stdout.contains("- --lr=0.") && !job.stdout.contains("${trialParameters"),
                "\(job.stdout)")
        #expect(job.stdout.contains("  name: job-1\n") && job.stdout.contains("knob.dev/trial: job-1")
                && job.stdout.contains("- name: KNOB_TRIAL\n          value: job-1"), "\(job.stdout)")
    }

    @Test func aTemplateThatReferencesAnUnknownParameterIsRejectedBeforeAnyTrialRuns() async throws {
        let dir = makeTemporaryDirectory()
        try write("import pathlib; pathlib.Path('ran').touch()", to: "\(dir)/trainer.py")
        try write(tinySpec(name: "typo").replacingOccurrences(of: "${trialParameters.epochs}", with: "${trialParameters.epoch}"),
                  to: "\(dir)/spec.yaml")
        let home = "\(dir)/home"
        let run = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", home])
        #expect(run.status == 1)
        #expect(run.stderr.contains("spec.trialTemplate.command[3]: ${trialParameters.epoch} is not a trial parameter; did you mean epochs?"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/ran"), "no trial ran")
        #expect(!FileManager.default.fileExists(atPath: "\(home)/knob.db"), "nothing was recorded")
    }

    @Test func ctrlCStopsTheExperimentKillsItsTrialsAndRecordsIt() async throws {
        let dir = makeTemporaryDirectory()
        try write("#!/bin/sh\necho $$ > \"$KNOB_TRIAL_DIR/pid\"\necho accuracy=0.1\nexec sleep 300\n", to: "\(dir)/slow.sh", executable: true)
        try write(tinySpec(name: "slow").replacingOccurrences(
            of: "command: [python3, trainer.py, \"--lr=${trialParameters.learningRate}\", \"--epochs=${trialParameters.epochs}\"]",
            with: "command: [./slow.sh, \"${trialParameters.learningRate}\", \"${trialParameters.epochs}\"]"), to: "\(dir)/spec.yaml")
        let home = "\(dir)/home"
        // Started the way a shell starts it: a signal mask of its own, so SIGINT reaches it.
        let running = try await LocalRunner().start(TrialLaunch(
            experimentName: "e2e", trialName: "knob-run", argv: [knobExecutable, "run", "-f", "\(dir)/spec.yaml", "--home", home],
            workingDirectory: dir, environment: [:], logPath: "\(dir)/knob-run.log", trialDirectory: "\(dir)/knob-run"))
        let pidFiles = ["slow-1", "slow-2"].map { "\(home)/trials/slow/\($0)/pid" }
        var waited = 0
        while !pidFiles.allSatisfy({ FileManager.default.fileExists(atPath: $0) }), waited < 200 {
            try await Task.sleep(for: .milliseconds(50))
            waited += 1
        }
        let trialPIDs = pidFiles.compactMap { (try? String(contentsOfFile: $0, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) } }
        #expect(trialPIDs.count == 2, "both trials started")
        // A second knob on the same experiment is refused instead of competing with the first.
        let second = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", home])
        #expect(second.status == 1 && second.stderr.contains("experiment slow is being run by another knob process (pid \(running.handle["pid"]!))"),
                "\(second.stderr)")
        let knobPID = try #require(running.handle["pid"].flatMap(Int32.init))
        kill(knobPID, SIGINT)
        let exit = await running.wait()
        let log = (try? String(contentsOfFile: "\(dir)/knob-run.log", encoding: .utf8)) ?? ""
        #expect(exit == .exited(130), "knob run output:\n\(log)")
        #expect(log.contains("stopping the experiment"))
        for pid in trialPIDs { #expect(!processIsRunning(pid), "trial process \(pid) survived Ctrl-C") }

        let get = try #require((try json(try await knob(["get", "slow", "--home", home, "-o", "json"]).stdout) as? [String: Any])?["knob"] as? [String: Any])
        #expect(get["status"] as? String == "Stopped" && get["reason"] as? String == "StoppedByUser")
        #expect((get["trials"] as? [String: Int])?["Killed"] == 2)

        // Running it again continues the stopped experiment: the killed trials count toward the budget.
        try write("#!/bin/sh\necho accuracy=0.2\n", to: "\(dir)/slow.sh", executable: true)
        let resumed = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", home])
        #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
        #expect(resumed.stdout.hasPrefix("resuming experiment slow"))
        let after = try #require((try json(try await knob(["get", "slow", "--home", home, "-o", "json"]).stdout) as? [String: Any])?["knob"] as? [String: Any])
        #expect(after["status"] as? String == "Succeeded")
        #expect((after["trials"] as? [String: Int]) == ["Killed": 2, "Succeeded": 4])
    }
}

@Suite struct RestartTests {
    @Test func trialsOutliveAKilledKnobAndAreFollowedAgainWithTheirRealExitStatus() async throws {
        let dir = makeTemporaryDirectory()
        // Reports once, waits for the go-ahead file, reports again and exits 3 (trial 1) or 0 (trial 2).
        try write("""
            #!/bin/sh
            echo "accuracy=0.$1"
            while [ ! -f "$2/go" ]; do sleep 0.05; done
            echo "accuracy=0.9$1"
            [ "$1" = 1 ] && exit 3
            exit 0
            """, to: "\(dir)/trial.sh", executable: true)
        try write("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: crash}
            spec:
              objective: {type: maximize, objectiveMetricName: accuracy}
              algorithm: {algorithmName: grid}
              parallelTrialCount: 2
              maxTrialCount: 2
              parameters:
                - {name: n, parameterType: int, feasibleSpace: {min: "1", max: "2"}}
              trialTemplate:
                command: [./trial.sh, "${trialParameters.n}", "\(dir)"]
            """, to: "\(dir)/spec.yaml")
        let home = "\(dir)/home"
        let first = try await LocalRunner().start(TrialLaunch(
            experimentName: "e2e", trialName: "first", argv: [knobExecutable, "run", "-f", "\(dir)/spec.yaml", "--home", home],
            workingDirectory: dir, environment: [:], logPath: "\(dir)/first.log", trialDirectory: "\(dir)/first"))
        // Wait until both first reports are in the store, then kill knob outright.
        func reportsRecorded(_ store: Store) async -> Int {
            guard let experiment = try? await store.experiment(named: "crash"),
                  let trials = try? await store.trials(of: experiment.id!) else { return 0 }
            var count = 0
            for trial in trials { count += (try? await store.metrics(ofTrial: trial.id!).count) ?? 0 }
            return count
        }
        var recorded = 0
        for _ in 0..<200 where recorded < 2 {
            try await Task.sleep(for: .milliseconds(50))
            if FileManager.default.fileExists(atPath: "\(home)/knob.db") { recorded = await reportsRecorded(try Store(path: "\(home)/knob.db")) }
        }
        let store = try Store(path: "\(home)/knob.db")
        #expect(recorded == 2, "both trials reported before the kill")
        kill(Int32(first.handle["pid"]!)!, SIGKILL)
        #expect(await first.wait() == .signaled(SIGKILL))

        // The trials go on without knob; a new knob follows them again and records how they end.
        try write("", to: "\(dir)/go")
        let second = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", home])
        #expect(second.stdout.contains("following again 2 trials left running by an earlier run"), "\(second.stdout)")
        let experiment = try #require(try await store.experiment(named: "crash"))
        #expect(experiment.status == .succeeded, "\(second.stdout)\(second.stderr)")
        let trials = try await store.trials(of: experiment.id!)
        #expect(trials.map(\.state) == [.failed, .succeeded])
        #expect(trials[0].exitCode == 3 && trials[0].message.hasPrefix("exited with code 3"))
        #expect(trials[1].objectiveValue == 0.92)
        for (trial, expected) in zip(trials, [[0.1, 0.91], [0.2, 0.92]]) {
            let values = try await store.metrics(ofTrial: trial.id!).map(\.value)
            #expect(values == expected, "\(trial.name): every report recorded once")
        }
    }
}

let katibStyleJob = """
    apiVersion: kubeflow.org/v1beta1
    kind: Experiment
    metadata: {name: job}
    spec:
      objective: {type: maximize, objectiveMetricName: acc}
      algorithm: {algorithmName: random}
      parameters:
        - {name: lr, parameterType: double, feasibleSpace: {min: "0.01", max: "0.1"}}
      trialTemplate:
        primaryContainerName: main
        trialParameters:
          - {name: learningRate, reference: lr}
        trialSpec:
          apiVersion: batch/v1
          kind: Job
          spec:
            template:
              spec:
                containers:
                  - name: main
                    image: python:3.11
                    command: [python3, train.py, "--lr=${trialParameters.learningRate}"]
                restartPolicy: Never
    """
