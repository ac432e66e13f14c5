import Foundation
@testable import Knob
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

    /// Trials and the status file each supervisor writes for them.
    static let statusCases: [([String], String)] = [
        (["/bin/sh", "-c", "exit 3"], #"{"exitCode":3}"#),
        (["/bin/sh", "-c", "exit 0"], #"{"exitCode":0}"#),
        (["/bin/sh", "-c", "kill -9 $$"], #"{"signal":9}"#),
        (["/bin/sh", "-c", "kill -SEGV $$"], #"{"signal":11}"#),
        (["/no/such/program", "x"], #"{"startError":"cannot start \/no\/such\/program: No such file or directory (is it installed and on PATH?)"}"#),
        (["./not-executable"], #"{"startError":"cannot start .\/not-executable: Permission denied (is it executable?)"}"#),
        (["./odd \"name\"\\\n\t\u{1}é"], #"{"startError":"cannot start .\/odd \"name\"\\\n\t\u0001é: No such file or directory (is it installed and on PATH?)"}"#),
    ]

    /// Exit codes, signals and start errors (with characters JSON must escape in the program's name)
    /// give the same bytes in the status file from either supervisor, so each reads the other's.
    @Test(arguments: statusCases)
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

    /// LocalRunner runs trials under the serving knob-supervise when it lies beside the executable, under a
    /// knob-supervise of their own when KNOB_SUPERVISOR=each, under `__supervise` when KNOB_SUPERVISOR=builtin;
    /// either way a SIGTERM to the trial's group leaves the supervisor alive to record that the trial died of it.
    @Test(arguments: [("serving", [String: String]()), ("small", ["KNOB_SUPERVISOR": "each"]), ("built-in", ["KNOB_SUPERVISOR": "builtin"])])
    func localRunnerChoosesTheSupervisorAndItOutlivesSIGTERM(name: String, environment: [String: String]) async throws {
        let dir = makeTemporaryDirectory("knob-supervise")
        let runner = LocalRunner(supervisor: knobExecutable, environment: environment)
        let running = try await runner.start(launch(["/bin/sleep", "300"], in: dir))
        let pid = try #require(running.handle["pid"].flatMap(Int32.init))
        if name == "serving" {
            // The handle's process is the trial itself, leading its own group, a child of the serving supervisor.
            #expect(await eventually { commandLine(pid) == ["/bin/sleep", "300"] })
            let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
            let fields = stat[stat.index(after: try #require(stat.lastIndex(of: ")")))...].split(separator: " ")
            #expect(fields[2] == "\(pid)", "the trial leads its own process group: \(stat)")
            let parent = try #require(Int32(fields[1]))
            #expect(commandLine(parent) == [smallSupervisor, "--serve"])
            #expect(running.handle["supervisor"] == "\(parent)")
            // Its start time, which tells it from a later process with its pid, is the one the supervisor read.
            #expect(running.handle["started"] != nil && running.handle["started"] == processStartTime(pid))
        } else {
            // Until it execs, the spawned process shows this one's command line.
            var argv: [String] = []
            #expect(await eventually {
                argv = commandLine(pid)
                return argv.contains("--status")
            })
            #expect(name == "small" ? argv.first == smallSupervisor : Array(argv.prefix(2)) == [knobExecutable, "__supervise"], "\(argv)")
            // Once the supervisor has started the trial (and so ignores SIGTERM itself).
            #expect(await eventually {
                let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
                return threads.contains { !((try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/children", encoding: .utf8)) ?? "").isEmpty }
            })
        }
        await running.terminate(grace: .seconds(5))
        #expect(await running.wait() == .signaled(SIGTERM))
        #expect(try String(contentsOfFile: "\(dir)/logs/sup-1.log.status", encoding: .utf8) == #"{"signal":15}"#)
    }

    /// Through the serving supervisor, each trial's status file holds the same bytes as under the others, the
    /// trial starts alike (stdin from /dev/null, output appended to its log, no descriptor above 2, no signal
    /// ignored or blocked, a name without a slash looked up on PATH past a directory that denies it) and gets
    /// the umask kept in KNOB_USER_UMASK while the status file stays private.
    @Test func theServingSupervisorWritesTheSameStatusesAndStartsTrialsAlike() async throws {
        let dir = makeTemporaryDirectory("knob-supervise")
        try write("", to: "\(dir)/not-executable")
        let runner = LocalRunner(supervisor: knobExecutable, environment: ["PATH": "/usr/bin:/bin"])
        func run(_ argv: [String], _ name: String, environment: [String: String] = [:]) async throws -> (end: TrialExit, status: String, log: String) {
            let trial = TrialLaunch(experimentName: "sup", trialName: name, argv: argv, workingDirectory: dir, environment: environment,
                                    logPath: "\(dir)/logs/\(name).log", trialDirectory: "\(dir)/trials/\(name)")
            let end = await (try runner.start(trial)).wait()
            return (end, try String(contentsOfFile: trial.logPath + ".status", encoding: .utf8),
                    (try? String(contentsOfFile: trial.logPath, encoding: .utf8)) ?? "")
        }
        for (i, (command, expected)) in Self.statusCases.enumerated() {
            let result = try await run(command, "s\(i)")
            #expect(result.status == expected)
            #expect(Supervisor.readStatus("\(dir)/logs/s\(i).log.status") == result.end, "\(command)")
        }
        let probe = #"readlink /proc/self/fd/0; ls /proc/self/fd | sort -n | tr '\n' ' '; echo; grep -E '^Sig(Ign|Blk)' /proc/self/status"#
        let probed = try await run(["/bin/sh", "-c", "echo before; \(probe)"], "probe")
        #expect(probed.log.hasPrefix("before\n/dev/null\n0 1 2 3 \nSigBlk:\t0000000000000000\nSigIgn:\t"), "\(probed.log)")
        // Nothing the supervisor itself ignores (nor what the trial's shell would need) is ignored by the trial.
        let reset = [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD].reduce(UInt64(0)) { $0 | UInt64(1) << UInt64($1 - 1) }
        let last = String(probed.log.split(separator: "\n").last ?? "")
        let ignored = try #require(UInt64(last.dropFirst("SigIgn:".count).trimmingCharacters(in: .whitespaces), radix: 16))
        #expect(ignored & reset == 0, "the trial ignores \(String(ignored, radix: 16))")
        try FileManager.default.createDirectory(atPath: "\(dir)/denied", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(dir)/allowed", withIntermediateDirectories: true)
        try write("", to: "\(dir)/denied/knob-probe")
        try write("#!/bin/sh\necho found \"$@\"\n", to: "\(dir)/allowed/knob-probe")
        chmod("\(dir)/allowed/knob-probe", 0o755)
        let found = try await run(["knob-probe", "a", "b"], "path", environment: ["PATH": "\(dir)/denied:\(dir)/allowed:/usr/bin:/bin"])
        #expect(found.end == .exited(0) && found.log == "found a b\n", "\(found)")
        let denied = try await run(["knob-probe"], "denied", environment: ["PATH": "\(dir)/denied"])
        #expect(denied.end == .startFailed("cannot start knob-probe: Permission denied (is it executable?)"))
        let previous = umask(0o022)
        defer { umask(previous) }
        let masked = try await run(["/bin/sh", "-c", "umask; : > made"], "umask", environment: ["KNOB_USER_UMASK": "27"])
        #expect(masked.log == "0027\n")
        #expect(try fileMode("\(dir)/made") == 0o640)
        #expect(try fileMode("\(dir)/logs/umask.log.status") == 0o600)
    }

    /// The serving supervisor outlives the process that started it (a `knob run` killed with -9): it still
    /// writes each trial's status when the trial ends, then exits, and a runner of another process adopts the
    /// trials from their handles and learns how they ended. When the serving supervisor itself is killed, its
    /// trials end as lost and the next trial starts under a new one.
    @Test func theServingSupervisorOutlivesItsStarterAndIsReplacedWhenItDies() async throws {
        let dir = makeTemporaryDirectory("knob-supervise")
        try write("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: outlive}
            spec:
              objective: {type: minimize, objectiveMetricName: loss}
              algorithm: {algorithmName: random}
              parallelTrialCount: 2
              maxTrialCount: 2
              parameters:
                - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
              trialTemplate:
                trialParameters: [{name: x, reference: x}]
                command: [/bin/sh, -c, 'while [ ! -e "$1" ]; do sleep 0.05; done; echo loss=$0; exit 3', "${trialParameters.x}", "\(dir)/go"]
            """, to: "\(dir)/spec.yaml")
        let home = "\(dir)/home"
        let starter = Process()
        starter.executableURL = URL(fileURLWithPath: knobExecutable)
        starter.arguments = ["run", "-f", "\(dir)/spec.yaml", "--home", home]
        starter.standardOutput = FileHandle.nullDevice
        starter.standardError = FileHandle.nullDevice
        try starter.run()
        var handles: [[String: String]] = []
        #expect(await eventually {
            guard let store = try? KnobHome(home).openStore(), let experiment = try? await store.experiment(named: "outlive"),
                  let trials = try? await store.trials(of: experiment.id!) else { return false }
            handles = trials.filter { $0.state == .running }.map(\.runnerHandle)
            return handles.count == 2
        })
        kill(starter.processIdentifier, SIGKILL)
        starter.waitUntilExit()
        let served = try #require(handles.first?["supervisor"].flatMap(Int32.init))
        #expect(commandLine(served) == [smallSupervisor, "--serve"])
        // A supervisor of this test's own (another path), so that killing it leaves the other tests' trials be.
        try FileManager.default.createDirectory(atPath: "\(dir)/bin", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: smallSupervisor, toPath: "\(dir)/bin/knob-supervise")
        let runner = LocalRunner(supervisor: "\(dir)/bin/knob")
        let adopted = handles.compactMap { runner.adopt(handle: $0) }
        #expect(adopted.count == 2)
        FileManager.default.createFile(atPath: "\(dir)/go", contents: nil)
        for trial in adopted { #expect(await trial.wait() == .exited(3)) }
        // With its trials ended, it exits.
        #expect(await eventually { commandLine(served) != [smallSupervisor, "--serve"] })

        let first = try await runner.start(launch(["/bin/sleep", "300"], in: dir))
        let server = try #require(first.handle["supervisor"].flatMap(Int32.init))
        #expect(commandLine(server) == ["\(dir)/bin/knob-supervise", "--serve"])
        kill(server, SIGKILL)
        #expect(await first.wait() == .lost)
        let second = try await runner.start(launch(["/bin/sh", "-c", "exit 4"], in: dir))
        #expect(second.handle["supervisor"] != "\(server)")
        #expect(await second.wait() == .exited(4))
    }

    /// A serving supervisor that stops reading (here stopped with SIGSTOP) cannot hold up the process that starts
    /// trials: a request that waits its send timeout to be written gets the server killed, every start waiting fails
    /// as Gone, and the server's running trials end as lost (their groups killed).
    @Test(.timeLimit(.minutes(1))) func aServingSupervisorThatStopsReadingIsGivenUp() async throws {
        let dir = makeTemporaryDirectory("knob-supervise")
        let server = try SupervisorServer(executable: smallSupervisor, sendTimeout: .milliseconds(300))
        let answer = try await server.start(argv: ["/bin/sleep", "300"], environment: [:], workingDirectory: dir,
                                            logPath: "\(dir)/running.log", statusPath: "\(dir)/running.log.status")
        guard case .started(let trial, _, let exit) = answer else {
            Issue.record("the trial did not start: \(answer)")
            return
        }
        kill(server.pid, SIGSTOP)
        // Requests of 1 MB each, more than the socket holds.
        let big = String(repeating: "x", count: 1 << 20)
        let outcomes = await withTaskGroup(of: String.self) { group in
            for i in 0..<3 {
                group.addTask {
                    do {
                        let answer = try await server.start(argv: ["/bin/true"], environment: ["BIG": big], workingDirectory: dir,
                                                            logPath: "\(dir)/big\(i).log", statusPath: "\(dir)/big\(i).log.status")
                        return "answered \(answer)"
                    } catch is SupervisorServer.Gone {
                        return "gone"
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes == ["gone", "gone", "gone"])
        #expect(await exit.wait() == .lost)
        #expect(server.isGone)
        // Gone, or a zombie where nothing reaps orphans.
        #expect(await eventually {
            guard let stat = try? String(contentsOfFile: "/proc/\(trial)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return true }
            return stat[close...].hasPrefix(") Z")
        }, "the trial's group is killed with its server")
    }

    /// After an upgrade (or a downgrade) the new process finds the trials the old one started under another
    /// supervisor (by their supervisor's command line, or a served trial by its environment) and reads how they ended.
    @Test(arguments: [(["KNOB_SUPERVISOR": "builtin"], [String: String]()), ([String: String](), ["KNOB_SUPERVISOR": "builtin"]),
                      (["KNOB_SUPERVISOR": "each"], [String: String]()), ([String: String](), ["KNOB_SUPERVISOR": "each"])])
    func aTrialStartedUnderOneSupervisorIsFollowedByARunnerThatUsesTheOther(before: [String: String], after: [String: String]) async throws {
        let dir = makeTemporaryDirectory("knob-supervise")
        // It runs until the test lets it end, so that it is found running however loaded the machine is.
        let argv = ["/bin/sh", "-c", "while [ ! -e \"$0\" ]; do sleep 0.05; done; exit 5", "\(dir)/go"]
        let trial = launch(argv, in: dir)
        let started = try await LocalRunner(supervisor: knobExecutable, environment: before).start(trial)
        let pid = try #require(started.handle["pid"].flatMap(Int32.init))
        #expect(await eventually { commandLine(pid).contains("--status") || commandLine(pid) == argv })
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

/// The command line of process `pid` (empty once it is gone).
private func commandLine(_ pid: Int32) -> [String] {
    (FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
}

/// Waits up to 10 s for `condition`.
private func eventually(_ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
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
