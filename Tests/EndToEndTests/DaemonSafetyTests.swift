import Foundation
import Knob
import KnobClient
import Store
import Testing

/// knobd and knob against what they must survive or refuse: a store from a newer knob, a crash
/// while starting an experiment, a full disk, an experiment nobody drives, a stored spec over the
/// parallelism limit; and the modes of what they write. Real processes, real SQLite files, real
/// HTTP over the socket.
/// `quickSpec` with `command` as the trial, and as many failures allowed as trials (so that trials
/// a test interrupts do not end the experiment).
func tolerantSpec(_ name: String, trials: Int, parallel: Int, command: String? = nil) -> String {
    var spec = quickSpec(name, trials: trials, parallel: parallel)
        .replacingOccurrences(of: "maxTrialCount: \(trials)\n", with: "maxTrialCount: \(trials)\n  maxFailedTrialCount: \(trials)\n")
    if let command {
        spec = spec.replacingOccurrences(of: #"command: [python3, trainer.py, "${trialParameters.lr}"]"#, with: "command: \(command)")
    }
    if !spec.contains("maxFailedTrialCount") || (command != nil && !spec.contains(command!)) { Issue.record("quickSpec changed its shape:\n\(spec)") }
    return spec
}

@Suite(.serialized) struct DaemonSafetyTests {
    /// A trial that runs long enough to be interrupted, and reports once it is done.
    static let sleeper = """
        import sys, time
        time.sleep(float(sys.argv[2]))
        print(f"accuracy={float(sys.argv[1]):.6f}", flush=True)
        """

    func sleeperSpec(_ name: String, seconds: Double = 120, trials: Int = 4, parallel: Int = 1) -> String {
        tolerantSpec(name, trials: trials, parallel: parallel, command: #"[python3, sleeper.py, "${trialParameters.lr}", "\#(seconds)"]"#)
    }

    /// A folder with the sleeper, and a home in it that does not exist yet.
    func workspace(_ label: String) throws -> (dir: String, home: String) {
        let dir = makeTemporaryDirectory(label)
        try write(Self.sleeper, to: "\(dir)/sleeper.py")
        return (dir, "\(dir)/home")
    }

    func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int
    }

    /// knobd started with `environment` added, not waited for (it may die at once).
    func launchKnobd(home: String, environment: [String: String] = [:], log: String) async throws -> any RunningTrial {
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        return try await LocalRunner().start(TrialLaunch(
            experimentName: "tests", trialName: "knobd", argv: [DaemonProcess.executable, "--home", home],
            workingDirectory: home, environment: environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { a, _ in a },
            logPath: log, trialDirectory: makeTemporaryDirectory("knobd-run")))
    }

    /// The exit of `process`, or nil if it still runs after `limit`.
    func exitStatus(of process: any RunningTrial, within limit: Duration) async -> TrialExit? {
        await withTaskGroup(of: TrialExit?.self) { group in
            group.addTask { await process.wait() }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            if first == nil { await process.terminate(grace: .seconds(2)) }
            return first
        }
    }

    func view(_ daemon: DaemonProcess, _ name: String) async throws -> [String: Any] {
        try #require(try json(try await daemon.client.request("GET", "/v1/experiments/\(name)").text) as? [String: Any])
    }

    /// Polls the experiment until `done` holds (or `limit` passes); returns the last view.
    func poll(_ daemon: DaemonProcess, _ name: String, limit: Duration = .seconds(60),
              until done: ([String: Any]) -> Bool) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + limit
        var last: [String: Any] = [:]
        while ContinuousClock.now < deadline {
            if let current = try? await view(daemon, name) {
                last = current
                if done(current) { return current }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return last
    }

    func stopAndShutDown(_ daemon: DaemonProcess, experiments: [String]) async {
        for name in experiments { _ = try? await daemon.client.request("POST", "/v1/experiments/\(name)/stop") }
        kill(daemon.pid, SIGTERM)
        _ = await exitStatus(of: daemon.process, within: .seconds(30))
    }

    // MARK: Newer store

    @Test func aStoreFromANewerKnobIsRefusedByKnobAndKnobdAndLeftUntouched() async throws {
        let (dir, home) = try workspace("knob-newer")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let database = "\(home)/knob.db"
        do {
            let store = try Store(path: database)
            try await store.createExperiment(try Engine.newRecord(
                specText: sleeperSpec("old"), spec: try ExperimentSpec.parse(sleeperSpec("old")), directory: dir))
        }
        let marked = try await runToEnd("/usr/bin/env", ["python3", "-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
            db.commit()
            db.close()
            """, database])
        #expect(marked.status == 0, "\(marked.stderr)")
        let before = try Data(contentsOf: URL(fileURLWithPath: database))
        let expected = "this store was written by a newer knob (migration v99-from-the-future); upgrade knob"

        let list = try await knob(["list", "--home", home])
        #expect(list.status == 1)
        #expect(list.stderr.contains("error: \(expected)"), "\(list.stderr)")

        let daemon = try await runToEnd(DaemonProcess.executable, ["--home", home])
        #expect(daemon.status == 1)
        #expect(daemon.stderr.contains("knobd: \(expected)"), "\(daemon.stderr)")
        for output in [list.stderr, daemon.stderr] {
            #expect(!output.contains("StoreError") && !output.contains("DatabaseError"), "no Swift type names: \(output)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: database)) == before, "not a byte of the store changed")
        #expect(!FileManager.default.fileExists(atPath: "\(home)/knobd.sock"), "knobd did not come up")
    }

    // MARK: File modes

    @Test func knobsOwnFilesArePrivateUnderUmask022AndTrialOutputsKeepTheUsersModes() async throws {
        let previous = umask(0o022)
        defer { umask(previous) }
        let (dir, home) = try workspace("knob-modes")
        try write("""
            import os, sys
            with open(os.path.join(os.environ["KNOB_TRIAL_DIR"], "out.txt"), "w") as f:
                f.write("model")
            print(f"accuracy={float(sys.argv[1]):.6f}", flush=True)
            """, to: "\(dir)/writer.py")
        let spec = tolerantSpec("modes", trials: 1, parallel: 1, command: #"[python3, writer.py, "${trialParameters.lr}"]"#)
        try write(spec, to: "\(dir)/modes.yaml")

        let run = try await knob(["run", "-f", "\(dir)/modes.yaml", "--home", home])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let own: [(String, Int)] = [
            (home, 0o700), ("\(home)/knob.db", 0o600), ("\(home)/knob.db.open-lock", 0o600),
            ("\(home)/logs", 0o700), ("\(home)/logs/modes", 0o700), ("\(home)/logs/modes/modes-1.log", 0o600),
            ("\(home)/logs/modes/modes-1.log.status", 0o600), ("\(home)/trials", 0o700), ("\(home)/trials/modes", 0o700),
            ("\(home)/trials/modes/modes-1", 0o700), ("\(home)/locks", 0o700), ("\(home)/locks/modes.lock", 0o600),
        ]
        for (path, expected) in own {
            #expect(mode(path) == expected, "knob run: \(path) is \(mode(path).map { String($0, radix: 8) } ?? "missing")")
        }
        #expect(mode("\(home)/trials/modes/modes-1/out.txt") == 0o644, "the trial's own file keeps the user's umask")

        // A home left loose (by an older knob, or by hand) is tightened when it is opened.
        chmod(home, 0o755)
        chmod("\(home)/knob.db", 0o644)
        chmod("\(home)/logs", 0o755)
        let list = try await knob(["list", "--home", home])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(mode(home) == 0o700 && mode("\(home)/knob.db") == 0o600 && mode("\(home)/logs") == 0o700)

        // knobd, started in a loose home under umask 022.
        let daemonHome = "\(dir)/daemon-home"
        try FileManager.default.createDirectory(atPath: daemonHome, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let daemon = try await DaemonProcess.start(home: daemonHome, log: "\(dir)/knobd.log")
        try await daemon.client.request("POST", "/v1/experiments?directory=\(dir)", body: Data(spec.utf8), contentType: "application/yaml")
        let end = try await poll(daemon, "modes") { ["Succeeded", "Failed"].contains($0["status"] as? String ?? "") }
        #expect(end["status"] as? String == "Succeeded", "\(end)")
        for (path, expected) in own + [("\(daemonHome)/knobd.sock", 0o600), ("\(daemonHome)/knobd.lock", 0o600),
                                       ("\(home)/knob.db-wal", 0o600), ("\(home)/knob.db-shm", 0o600)] {
            let path = path.replacingOccurrences(of: home, with: daemonHome)
            #expect(mode(path) == expected, "knobd: \(path) is \(mode(path).map { String($0, radix: 8) } ?? "missing")")
        }
        #expect(mode("\(daemonHome)/trials/modes/modes-1/out.txt") == 0o644, "the trial's own file keeps the user's umask")
        await stopAndShutDown(daemon, experiments: [])
    }

    // MARK: Crash loop

    @Test func anExperimentWhoseStartCrashesKnobdTwiceIsFailedAndKnobdComesUp() async throws {
        let (dir, home) = try workspace("knob-crashloop")
        let first = try await DaemonProcess.start(home: home, log: "\(dir)/knobd-0.log")
        try await first.client.request("POST", "/v1/experiments?directory=\(dir)", body: Data(sleeperSpec("loop").utf8),
                                       contentType: "application/yaml")
        _ = try await poll(first, "loop") { ($0["trials"] as? [String: Int])?["Running"] == 1 }
        kill(first.pid, SIGTERM)
        #expect(await exitStatus(of: first.process, within: .seconds(30)) != nil)

        for attempt in 1...2 {
            let crashing = try await launchKnobd(home: home, environment: ["KNOB_DEBUG_CRASH_ON_START": "loop"], log: "\(dir)/knobd-\(attempt).log")
            let exit = await exitStatus(of: crashing, within: .seconds(30))
            #expect(exit == .signaled(SIGABRT), "start \(attempt) died while starting the experiment: \(String(describing: exit))")
        }
        // The third start: the experiment is given up, the daemon serves. The fault is still set.
        let third = try await launchKnobd(home: home, environment: ["KNOB_DEBUG_CRASH_ON_START": "loop"], log: "\(dir)/knobd-3.log")
        let daemon = DaemonProcess(home: home, process: third)
        let failed = try await poll(daemon, "loop", limit: .seconds(30)) { $0["status"] as? String == "Failed" }
        #expect(failed["status"] as? String == "Failed" && failed["reason"] as? String == "DaemonCrashed", "\(failed)")
        let message = failed["message"] as? String ?? ""
        #expect(message.contains("2 times in a row") && message.contains("knob resume loop"), "\(message)")
        #expect((try? await daemon.client.request("GET", "/healthz")) != nil, "knobd answers")
        try await Task.sleep(for: .milliseconds(500))
        #expect(kill(daemon.pid, 0) == 0, "knobd is still up")
        // The trial the first daemon left running is stopped, as when any experiment ends.
        var trials: [[String: Any]] = []
        for _ in 0..<150 {
            trials = try json(try await daemon.client.request("GET", "/v1/experiments/loop/trials").text) as? [[String: Any]] ?? []
            if trials.allSatisfy({ $0["state"] as? String == "Killed" }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(trials.count == 1 && trials.allSatisfy { $0["state"] as? String == "Killed" && $0["reason"] as? String == "DaemonCrashed" },
                "\(trials)")
        for trial in trials {
            if let pgid = (trial["runnerHandle"] as? [String: String])?["pgid"].flatMap(Int32.init) {
                #expect(!processIsRunning(pgid), "the trial's supervisor \(pgid) is gone (or a zombie)")
                kill(-pgid, SIGKILL)
            }
        }
        await stopAndShutDown(daemon, experiments: [])
    }

    @Test func aStartThatCrashedOnceAndThenCompletedResetsTheCount() async throws {
        let (dir, home) = try workspace("knob-crashonce")
        var daemon = try await DaemonProcess.start(home: home, log: "\(dir)/knobd-0.log")
        try await daemon.client.request("POST", "/v1/experiments?directory=\(dir)", body: Data(sleeperSpec("once").utf8),
                                        contentType: "application/yaml")
        for round in 1...2 {
            _ = try await poll(daemon, "once") { ($0["trials"] as? [String: Int])?["Running"] == 1 }
            let store = try Store(path: "\(home)/knob.db")
            let id = try #require(try await store.experiment(named: "once")?.id)
            for _ in 0..<100 {
                if try await store.unfinishedStarts(id) == 0 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try await store.unfinishedStarts(id) == 0, "round \(round): the completed start was cleared")
            kill(daemon.pid, SIGKILL)
            _ = await exitStatus(of: daemon.process, within: .seconds(30))

            let crashing = try await launchKnobd(home: home, environment: ["KNOB_DEBUG_CRASH_ON_START": "once"], log: "\(dir)/knobd-crash-\(round).log")
            #expect(await exitStatus(of: crashing, within: .seconds(30)) == .signaled(SIGABRT), "round \(round): the start crashed")
            #expect(try await store.unfinishedStarts(id) == 1, "round \(round): one start that never completed")
            daemon = try await DaemonProcess.start(home: home, log: "\(dir)/knobd-\(round).log")
        }
        // Two crashes, but never two in a row: it runs.
        let running = try await poll(daemon, "once", limit: .seconds(10)) { $0["driven"] as? Bool == true }
        #expect(running["status"] as? String == "Running" && running["driven"] as? Bool == true, "\(running)")
        await stopAndShutDown(daemon, experiments: ["once"])
    }

    // MARK: An experiment nobody drives

    @Test func knobWaitEndsWhenNothingDrivesARunningExperiment() async throws {
        let (dir, home) = try workspace("knob-stranded")
        let daemon = try await DaemonProcess.start(home: home, log: "\(dir)/knobd.log")
        try await daemon.client.request("POST", "/v1/experiments?directory=\(dir)", body: Data(sleeperSpec("alone", seconds: 30).utf8),
                                        contentType: "application/yaml")
        let driven = try await poll(daemon, "alone") { ($0["trials"] as? [String: Int])?["Running"] == 1 }
        #expect(driven["driven"] as? Bool == true)
        kill(daemon.pid, SIGKILL)
        _ = await exitStatus(of: daemon.process, within: .seconds(30))

        let started = ContinuousClock.now
        let wait = try await knob(["wait", "alone", "--home", home, "--timeout", "25"])
        #expect(wait.status == 1, "\(wait.stdout)\(wait.stderr)")
        #expect(wait.stderr.contains("is Running but nothing drives it") && wait.stderr.contains("knobd --home \(home)"), "\(wait.stderr)")
        #expect(ContinuousClock.now - started < .seconds(15), "it did not wait for the timeout")

        let restarted = try await DaemonProcess.start(home: home, log: "\(dir)/knobd-2.log")
        let resumed = try await poll(restarted, "alone", limit: .seconds(10)) { $0["driven"] as? Bool == true }
        #expect(resumed["driven"] as? Bool == true, "knobd drives it again: \(resumed)")
        await stopAndShutDown(restarted, experiments: ["alone"])
    }

    // MARK: Parallelism stored before the limit

    @Test func aStoredParallelTrialCountOverTheLimitIsClampedAndSaidSo() async throws {
        let (dir, home) = try workspace("knob-clamp")
        let daemon = try await DaemonProcess.start(home: home, log: "\(dir)/knobd.log")
        // Trials as light as can be: 64 of them run at once.
        let spec = tolerantSpec("wide", trials: 200, parallel: 1, command: #"[sh, -c, "sleep 30", "${trialParameters.lr}"]"#)
        try await daemon.client.request("POST", "/v1/experiments?directory=\(dir)", body: Data(spec.utf8), contentType: "application/yaml")
        _ = try await poll(daemon, "wide") { ($0["trials"] as? [String: Int])?["Running"] == 1 }
        kill(daemon.pid, SIGTERM)
        _ = await exitStatus(of: daemon.process, within: .seconds(30))

        // As an older knob, with no limit, would have stored it.
        do {
            let store = try Store(path: "\(home)/knob.db")
            let record = try #require(try await store.experiment(named: "wide"))
            var object = try #require(try JSONSerialization.jsonObject(with: Data(record.specJSON.utf8)) as? [String: Any])
            object["parallelTrialCount"] = 200
            let edited = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
            try await store.updateSpec(record.id!, specJSON: edited, event: "parallelTrialCount 200, as stored before the limit")
        }
        let restarted = try await DaemonProcess.start(home: home, log: "\(dir)/knobd-2.log")
        let full = try await poll(restarted, "wide") { view in
            let counts = view["trials"] as? [String: Int] ?? [:]
            return (counts["Running"] ?? 0) + (counts["Pending"] ?? 0) >= 64
        }
        try await Task.sleep(for: .seconds(2))
        let later = try await view(restarted, "wide")
        let counts = later["trials"] as? [String: Int] ?? [:]
        let firstCounts = full["trials"] as? [String: Int] ?? [:]
        #expect((firstCounts["Running"] ?? 0) + (firstCounts["Pending"] ?? 0) == 64, "64 at once, not 200: \(firstCounts)")
        #expect((counts["Running"] ?? 0) + (counts["Pending"] ?? 0) == 64, "still 64 at once two seconds later: \(counts)")
        let store = try Store(path: "\(home)/knob.db")
        let events = try await store.events(of: try #require(try await store.experiment(named: "wide")?.id))
        let said = events.first { $0.kind == "ParallelismLimited" }?.message ?? ""
        #expect(said.contains("parallelTrialCount 200 is above the limit of 64"), "\(events.map(\.kind))")
        await stopAndShutDown(restarted, experiments: ["wide"])
    }
}
