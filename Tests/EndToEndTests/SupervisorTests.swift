import Foundation
import Knob
import Store
import Testing

/// `knob-supervise`, built beside `knob`.
let smallSupervisor = (knobExecutable as NSString).deletingLastPathComponent + "/knob-supervise"

/// Runs `argv` to its end with exactly `environment`, under the test's umask; returns its exit status.
private func runWithEnvironment(_ argv: [String], environment: [String: String], in directory: String) async throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: argv[0])
    process.arguments = Array(argv.dropFirst())
    process.environment = environment
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    return try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do { try process.run() } catch { continuation.resume(throwing: error) }
    }
}

private func fileMode(_ path: String) throws -> Int {
    try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
}

@Suite struct SupervisorTests {
    /// The two supervisors, as LocalRunner starts them.
    let supervisors: [(name: String, command: [String])] = [
        ("built-in", [knobExecutable, "__supervise"]),
        ("small", [smallSupervisor]),
    ]

    @Test func theSmallSupervisorIsBuiltBesideKnob() {
        #expect(FileManager.default.isExecutableFile(atPath: smallSupervisor),
                "\(smallSupervisor) is missing: build every target (swift build --build-tests) before the tests")
    }

    /// Exit codes, signals and start errors (with characters JSON must escape in the program's name)
    /// give the same bytes in the status file from either supervisor, so each reads the other's.
    @Test(arguments: [
        (["/bin/sh", "-c", "exit 3"], #"{"exitCode":3}"#),
        (["/bin/sh", "-c", "exit 0"], #"{"exitCode":0}"#),
        (["/bin/sh", "-c", "kill -9 $$"], #"{"signal":9}"#),
        (["/bin/sh", "-c", "kill -SEGV $$"], #"{"signal":11}"#),
        (["/no/such/program", "x"], #"{"startError":"cannot start \/no\/such\/program: No such file or directory (is it installed and on PATH?)"}"#),
        (["./not-executable"], #"{"startError":"cannot start .\/not-executable: Permission denied (is it executable?)"}"#),
        (["./odd \"name\"\\\n\t\u{1}é"], #"{"startError":"cannot start .\/odd \"name\"\\\n\t\u0001é: No such file or directory (is it installed and on PATH?)"}"#),
    ])
    func bothSupervisorsWriteTheSameStatusBytes(command: [String], expected: String) async throws {
        let dir = makeTemporaryDirectory("knob-supervise")
        try write("", to: "\(dir)/not-executable")
        for supervisor in supervisors {
            let status = "\(dir)/\(supervisor.name).status"
            let code = try await runWithEnvironment(supervisor.command + ["--status", status, "--"] + command,
                                                    environment: ["PATH": "/usr/bin:/bin"], in: dir)
            #expect(code == 0, "\(supervisor.name) exits 0 once it has recorded the end")
            let bytes = try String(contentsOfFile: status, encoding: .utf8)
            #expect(bytes == expected, "\(supervisor.name) wrote \(bytes)")
            #expect(!FileManager.default.fileExists(atPath: status + ".tmp"))
        }
    }

    /// Under umask 022 the status file is still private, and the trial gets the umask kept in
    /// KNOB_USER_UMASK (here 027), not the supervisor's.
    @Test func theStatusFileIsPrivateAndTheTrialGetsTheUsersUmask() async throws {
        let dir = makeTemporaryDirectory("knob-supervise")
        let previous = umask(0o022)
        defer { umask(previous) }
        for supervisor in supervisors {
            let status = "\(dir)/\(supervisor.name).status"
            let code = try await runWithEnvironment(
                supervisor.command + ["--status", status, "--", "/bin/sh", "-c", "umask > \(supervisor.name).umask; : > \(supervisor.name).made"],
                environment: ["PATH": "/usr/bin:/bin", "KNOB_USER_UMASK": "27"], in: dir)
            #expect(code == 0)
            #expect(try fileMode(status) == 0o600, "\(supervisor.name)")
            #expect(try String(contentsOfFile: "\(dir)/\(supervisor.name).umask", encoding: .utf8) == "0027\n", "\(supervisor.name)")
            #expect(try fileMode("\(dir)/\(supervisor.name).made") == 0o640, "\(supervisor.name)")
        }
    }

    /// The trial starts alike under either supervisor: stdin from /dev/null, no descriptor above 2 of the
    /// supervisor's (fd 5 here), no signal ignored or blocked (the supervisor itself ignores SIGTERM, SIGINT and
    /// SIGHUP); a name without a slash is looked up on PATH as posix_spawnp does, past a directory whose file of that
    /// name cannot be run, and is denied when no other is found.
    @Test func bothSupervisorsStartTheTrialAlike() async throws {
        let dir = makeTemporaryDirectory("knob-supervise")
        try FileManager.default.createDirectory(atPath: "\(dir)/denied", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(dir)/allowed", withIntermediateDirectories: true)
        try write("", to: "\(dir)/denied/knob-probe")
        try write("#!/bin/sh\necho found \"$@\"\n", to: "\(dir)/allowed/knob-probe")
        chmod("\(dir)/allowed/knob-probe", 0o755)
        // What the process that starts the supervisor ignores, the trial may inherit; not SIGTERM, SIGINT or SIGHUP.
        let reset = UInt64(1 << (SIGTERM - 1) | 1 << (SIGINT - 1) | 1 << (SIGHUP - 1))
        let probe = #"readlink /proc/self/fd/0; ls /proc/self/fd | sort -n | tr '\n' ' '; echo; grep -E '^Sig(Ign|Blk)' /proc/self/status"#
        for supervisor in supervisors {
            let quoted = supervisor.command.map { "'\($0)'" }.joined(separator: " ")
            let cases: [(path: String, command: String, expected: String)] = [
                ("/usr/bin:/bin", "sh -c \"\(probe)\"", "/dev/null\n0 1 2 3 \nSigBlk:\t0000000000000000\nSigIgn:"),
                ("\(dir)/denied:\(dir)/allowed:/usr/bin:/bin", "knob-probe a b", "found a b\n"),
            ]
            for (path, command, expected) in cases {
                let status = "\(dir)/\(supervisor.name).status"
                let code = try await runWithEnvironment(
                    ["/bin/sh", "-c", "exec 5</dev/null; exec \(quoted) --status '\(status)' -- \(command) > '\(dir)/out'"],
                    environment: ["PATH": path], in: dir)
                #expect(code == 0, "\(supervisor.name)")
                #expect(try String(contentsOfFile: status, encoding: .utf8) == #"{"exitCode":0}"#, "\(supervisor.name): \(command)")
                let out = try String(contentsOfFile: "\(dir)/out", encoding: .utf8)
                #expect(out.hasPrefix(expected), "\(supervisor.name): \(command) printed \(out)")
                if let ignored = out.split(separator: "\n").last.flatMap({ UInt64($0.dropFirst("SigIgn:".count).trimmingCharacters(in: .whitespaces), radix: 16) }),
                   out.contains("SigIgn:") {
                    #expect(ignored & reset == 0, "\(supervisor.name): the trial ignores \(String(ignored, radix: 16))")
                }
            }
            let status = "\(dir)/\(supervisor.name)-denied.status"
            _ = try await runWithEnvironment(supervisor.command + ["--status", status, "--", "knob-probe"], environment: ["PATH": "\(dir)/denied"], in: dir)
            #expect(try String(contentsOfFile: status, encoding: .utf8)
                    == #"{"startError":"cannot start knob-probe: Permission denied (is it executable?)"}"#, "\(supervisor.name)")
        }
    }

    @Test func aWrongCommandLineIsAUsageError() async throws {
        let result = try await runToEnd(smallSupervisor, ["--status", "f"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("usage: ") && result.stderr.contains("--status FILE -- COMMAND [ARG...]"), "\(result.stderr)")
    }

    func launch(_ argv: [String], in dir: String) -> TrialLaunch {
        TrialLaunch(experimentName: "sup", trialName: "sup-1", argv: argv, workingDirectory: dir, environment: [:],
                    logPath: "\(dir)/logs/sup-1.log", trialDirectory: "\(dir)/trials/sup-1")
    }

    /// LocalRunner runs trials under knob-supervise when it lies beside the executable, under
    /// `__supervise` when KNOB_SUPERVISOR=builtin; either way a SIGTERM to the trial's group leaves the
    /// supervisor alive to record that the trial died of it.
    @Test(arguments: [("small", [String: String]()), ("built-in", ["KNOB_SUPERVISOR": "builtin"])])
    func localRunnerChoosesTheSupervisorAndItOutlivesSIGTERM(name: String, environment: [String: String]) async throws {
        let dir = makeTemporaryDirectory("knob-supervise")
        let runner = LocalRunner(supervisor: knobExecutable, environment: environment)
        let running = try await runner.start(launch(["/bin/sleep", "300"], in: dir))
        let pid = try #require(running.handle["pid"].flatMap(Int32.init))
        // Until it execs, the spawned process shows this one's command line.
        var argv: [String] = []
        #expect(await eventually {
            let commandLine = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
            argv = commandLine.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return argv.contains("--status")
        })
        #expect(name == "small" ? argv.first == smallSupervisor : Array(argv.prefix(2)) == [knobExecutable, "__supervise"], "\(argv)")
        // Once the supervisor has started the trial (and so ignores SIGTERM itself).
        #expect(await eventually {
            let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            return threads.contains { !((try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/children", encoding: .utf8)) ?? "").isEmpty }
        })
        await running.terminate(grace: .seconds(5))
        #expect(await running.wait() == .signaled(SIGTERM))
        #expect(try String(contentsOfFile: "\(dir)/logs/sup-1.log.status", encoding: .utf8) == #"{"signal":15}"#)
    }

    /// After an upgrade (or a downgrade) the new process finds the trials the old one started under the
    /// other supervisor, by their command line, and reads how they ended.
    @Test(arguments: [(["KNOB_SUPERVISOR": "builtin"], [String: String]()), ([String: String](), ["KNOB_SUPERVISOR": "builtin"])])
    func aTrialStartedUnderOneSupervisorIsFollowedByARunnerThatUsesTheOther(before: [String: String], after: [String: String]) async throws {
        let dir = makeTemporaryDirectory("knob-supervise")
        // It runs until the test lets it end, so that it is found running however loaded the machine is.
        let trial = launch(["/bin/sh", "-c", "while [ ! -e \"$0\" ]; do sleep 0.05; done; exit 5", "\(dir)/go"], in: dir)
        let started = try await LocalRunner(supervisor: knobExecutable, environment: before).start(trial)
        let pid = try #require(started.handle["pid"].flatMap(Int32.init))
        #expect(await eventually {
            (FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()).split(separator: 0).contains(Data("--status".utf8))
        })
        let found = try #require(await LocalRunner(supervisor: knobExecutable, environment: after).find(trial))
        #expect(found.handle["pid"] == started.handle["pid"])
        FileManager.default.createFile(atPath: "\(dir)/go", contents: nil)
        #expect(await found.wait() == .exited(5))
        #expect(await started.wait() == .exited(5))
    }

    /// A trial adopted from its handle (as after a restart) is known to have ended when its supervisor
    /// exits (a pidfd), not on the next look of a timer: with the timer set to an hour, each end is still
    /// seen, within a bound no load reaches and an hour's timer would miss. The waits run on a thread of
    /// their own, so that other tests keeping the shared pool busy do not count.
    @Test func anAdoptedTrialsEndIsSeenWhenItHappens() async throws {
        let dir = makeTemporaryDirectory("knob-supervise")
        var runner = LocalRunner(supervisor: knobExecutable)
        runner.adoptedLookInterval = .seconds(3600)
        let executor = ThreadExecutor()
        for round in 0..<3 {
            let started = try await runner.start(launch(["/bin/sh", "-c", "sleep 0.1; exit \(round)"], in: dir))
            let adopted = try #require(runner.adopt(handle: started.handle))
            let seen = await withTaskGroup(of: TrialExit?.self) { group in
                group.addTask { await withTaskExecutorPreference(executor) { await adopted.wait() } }
                group.addTask {
                    try? await Task.sleep(for: .seconds(60))
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            #expect(seen == .exited(Int32(round)), "the end of trial \(round) was not seen within 60 s")
            _ = await started.wait()
        }
    }

    /// `knob run` records a trial's end as soon as its supervisor has written the status: the reading
    /// of its output, which waits for more, ends when the trial exits. With that wait set to an hour
    /// (`KNOB_SCRAPE_INTERVAL`), each trial, which prints after 50 ms (so the first read found nothing),
    /// still has its end recorded within a bound no load reaches.
    @Test func knobRunRecordsEachEndWhenItHappens() async throws {
        let dir = makeTemporaryDirectory("knob-supervise")
        try write("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: ends}
            spec:
              objective: {type: minimize, objectiveMetricName: loss}
              algorithm: {algorithmName: random}
              parallelTrialCount: 1
              maxTrialCount: 4
              parameters:
                - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
              trialTemplate:
                trialParameters: [{name: x, reference: x}]
                command: [/bin/sh, -c, 'sleep 0.05; echo loss=$0', "${trialParameters.x}"]
            """, to: "\(dir)/spec.yaml")
        let home = "\(dir)/home"
        let run = try await runToEnd("/usr/bin/timeout", ["300", "/usr/bin/env", "KNOB_SCRAPE_INTERVAL=3600", knobExecutable,
                                                          "run", "-f", "\(dir)/spec.yaml", "--home", home])
        #expect(run.status == 0, "exit \(run.status) (124: still running after 300 s): \(run.stderr)")
        let store = try KnobHome(home).openStore()
        let experiment = try #require(try await store.experiment(named: "ends"))
        let trials = try await store.trials(of: experiment.id!)
        #expect(trials.count == 4 && trials.allSatisfy { $0.state == .succeeded })
        for trial in trials {
            let status = try #require(trial.logPath).appending(".status")
            let written = try #require(FileManager.default.attributesOfItem(atPath: status)[.modificationDate] as? Date)
            let completed = try #require(trial.completedAt)
            #expect(completed.timeIntervalSince(written) < 120, "\(trial.name)'s end recorded \(completed.timeIntervalSince(written)) s after it")
        }
    }
}

/// Waits up to 10 s for `condition`.
private func eventually(_ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// Runs the jobs of tasks that prefer it on one thread of its own, away from the shared pool.
private final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    init() {
        Thread.detachNewThread { [self] in
            while true {
                condition.lock()
                while jobs.isEmpty { condition.wait() }
                let job = jobs.removeFirst()
                condition.unlock()
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.lock()
        jobs.append(unowned)
        condition.signal()
        condition.unlock()
    }
}
