import Foundation
import Knob
import KnobClient
import Store
import Testing

/// A knobd started for a test, on a home of its own.
struct DaemonProcess {
    let home: String
    let process: any RunningTrial

    static var executable: String { (knobExecutable as NSString).deletingLastPathComponent + "/knobd" }

    var socket: String { "\(home)/knobd.sock" }
    var pid: Int32 { Int32(process.handle["pid"]!)! }
    var client: KnobClient { KnobClient(.unixSocket(socket)) }
    /// The daemon's /proc/PID/maps: what it has mapped, libraries included (read to its end: its size reads as 0).
    var maps: String {
        get throws {
            let file = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/\(pid)/maps"))
            defer { try? file.close() }
            return String(decoding: try file.readToEnd() ?? Data(), as: UTF8.self)
        }
    }

    /// Starts knobd and waits until it answers.
    static func start(home: String, arguments: [String] = [], log: String? = nil) async throws -> DaemonProcess {
        let process = try await LocalRunner().start(TrialLaunch(
            experimentName: "tests", trialName: "knobd", argv: [executable, "--home", home] + arguments,
            workingDirectory: home, environment: [:], logPath: log ?? "\(home)/knobd.log", trialDirectory: "\(home)/knobd-run"))
        let daemon = DaemonProcess(home: home, process: process)
        for _ in 0..<200 {
            if (try? await daemon.client.request("GET", "/healthz", timeout: 2)) != nil { return daemon }
            try await Task.sleep(for: .milliseconds(50))
        }
        let log = (try? String(contentsOfFile: "\(home)/knobd.log", encoding: .utf8)) ?? ""
        Issue.record("knobd did not answer within 10 s:\n\(log)")
        throw CancellationError()
    }
}

/// Trials that report a few epochs quickly.
let quickTrainer = """
    import sys, time
    lr = float(sys.argv[1])
    for epoch in range(1, 4):
        time.sleep(0.05)
        print(f"epoch {epoch} accuracy={1 - (lr - 0.3) ** 2 - 0.1 / epoch:.6f}", flush=True)
    """

func quickSpec(_ name: String, trials: Int = 6, parallel: Int = 2) -> String {
    """
    apiVersion: kubeflow.org/v1beta1
    kind: Experiment
    metadata: {name: \(name)}
    spec:
      objective: {type: maximize, objectiveMetricName: accuracy}
      algorithm: {algorithmName: random}
      parallelTrialCount: \(parallel)
      maxTrialCount: \(trials)
      parameters:
        - {name: lr, parameterType: double, feasibleSpace: {min: "0.01", max: "0.9"}}
      trialTemplate:
        command: [python3, trainer.py, "${trialParameters.lr}"]
    """
}

@Suite(.serialized) struct DaemonTests {
    @Test func theCLIDrivesTwoExperimentsThroughKnobd() async throws {
        let dir = makeTemporaryDirectory()
        try write(quickTrainer, to: "\(dir)/trainer.py")
        try write(quickSpec("first"), to: "\(dir)/first.yaml")
        try write(quickSpec("second", trials: 4, parallel: 1), to: "\(dir)/second.yaml")
        let home = "\(dir)/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let daemon = try await DaemonProcess.start(home: home)
        let mode = try FileManager.default.attributesOfItem(atPath: daemon.socket)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        // A second daemon on the same home refuses to start.
        let second = try await runToEnd(DaemonProcess.executable, ["--home", home])
        #expect(second.status == 1 && second.stderr.contains("another knobd (pid \(daemon.pid)) already serves"))

        for name in ["first", "second"] {
            let created = try await knob(["create", "-f", "\(dir)/\(name).yaml", "--home", home])
            #expect(created.status == 0, "\(created.stderr)")
        }
        let duplicate = try await knob(["create", "-f", "\(dir)/first.yaml", "--home", home])
        #expect(duplicate.status == 1 && duplicate.stderr.contains("experiment first already exists"))
        for name in ["first", "second"] {
            let waited = try await knob(["wait", name, "--home", home, "--timeout", "60"])
            #expect(waited.status == 0, "\(waited.stdout)\(waited.stderr)")
        }
        let listed = try #require(try json(try await knob(["list", "--home", home, "-o", "json"]).stdout) as? [String: Any])
        let list = try #require((listed["items"] as? [[String: Any]])?.compactMap { $0["knob"] as? [String: Any] })
        #expect(Set(list.compactMap { $0["name"] as? String }) == ["first", "second"])
        #expect(list.allSatisfy { $0["status"] as? String == "Succeeded" })
        // Local trials need no HTTP client: libcurl, and the TLS and Kerberos libraries behind it, stay unloaded.
        let maps = try daemon.maps
        #expect(maps.contains("libsqlite3") && !maps.contains("libcurl"))
        let trials = try #require(try json(try await knob(["trials", "first", "--home", home, "-o", "json"]).stdout) as? [[String: Any]])
        #expect(trials.count == 6 && trials.allSatisfy { $0["state"] as? String == "Succeeded" })

        let best = try await knob(["best", "first", "--home", home])
        let optimal = try #require(try json(best.stdout) as? [String: Any])
        let lr = try #require((optimal["parameterAssignments"] as? [[String: String]])?.first?["value"])
        #expect(try await knob(["best", "first", "--home", home, "--format", "args"]).stdout == "--lr=\(lr)\n")
        #expect(try await knob(["best", "first", "--home", home, "--format", "env"]).stdout == "LR=\(lr)\n")
        // The same over plain HTTP, as a pipeline would ask.
        let raw = try await daemon.client.request("GET", "/v1/experiments/first/optimal")
        let fromAPI = try #require((try json(raw.text) as? [String: Any])?["currentOptimalTrial"] as? [String: Any])
        #expect(fromAPI["bestTrialName"] as? String == optimal["bestTrialName"] as? String)
        let logs = try await knob(["logs", "first", "first-1", "--home", home])
        #expect(logs.stdout.contains("epoch 3 accuracy="))

        // Budget edits and resume: two more trials for the finished experiment.
        #expect(try await knob(["edit", "second", "--max-trials", "6", "--home", home]).status == 0)
        #expect(try await knob(["resume", "second", "--home", home]).status == 0)
        let watched = try await knob(["watch", "second", "--home", home, "--interval", "0.2"])
        #expect(watched.status == 0 && watched.stdout.contains("Status:     Succeeded"), "\(watched.stdout)\(watched.stderr)")
        let more = try #require(try json(try await knob(["get", "second", "--home", home, "-o", "json"]).stdout) as? [String: Any])
        #expect(((more["knob"] as? [String: Any])?["trials"] as? [String: Int])?["Succeeded"] == 6)
        #expect((more["status"] as? [String: Any])?["trialsSucceeded"] as? Int == 6)
        #expect((more["spec"] as? [String: Any])?["maxTrialCount"] as? Int == 6, "the edited budget shows in the spec")

        // SIGTERM: a clean stop; the store stays readable without the daemon.
        kill(daemon.pid, SIGTERM)
        #expect(await daemon.process.wait() == .exited(0))
        let fallback = try await knob(["get", "first", "--home", home])
        #expect(fallback.stdout.contains("Status:     Succeeded") && fallback.stderr.contains("reading the store"))
    }

    @Test func aFollowedLogStreamsWhileTheTrialRuns() async throws {
        let dir = makeTemporaryDirectory()
        let home = "\(dir)/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let daemon = try await DaemonProcess.start(home: home)
        defer { kill(daemon.pid, SIGKILL) }
        let spec = """
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: stream}
            spec:
              objective: {type: maximize, objectiveMetricName: accuracy}
              algorithm: {algorithmName: random}
              maxTrialCount: 1
              parallelTrialCount: 1
              parameters:
                - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
              trialTemplate:
                command: [/bin/sh, -c, "echo starting; sleep 1.5; echo accuracy=${trialParameters.x}"]
            """
        try await daemon.client.request("POST", "/v1/experiments?directory=\(dir)", body: Data(spec.utf8), contentType: "application/yaml")
        var started = false
        for _ in 0..<100 where !started {
            try await Task.sleep(for: .milliseconds(50))
            let trial = try? await daemon.client.request("GET", "/v1/experiments/stream/trials/stream-1")
            started = (try? json(trial?.text ?? "") as? [String: Any])?["state"] as? String == "Running"
        }
        #expect(started)
        let chunks = ChunkLog()
        let begin = Date()
        try await daemon.client.stream("/v1/experiments/stream/trials/stream-1/logs?follow=true") { data in
            chunks.append(String(decoding: data, as: UTF8.self), at: Date().timeIntervalSince(begin))
        }
        let received = chunks.all
        #expect(received.map(\.text).joined().contains("starting\naccuracy="))
        let first = try #require(received.first { $0.text.contains("starting") })
        let last = try #require(received.last { $0.text.contains("accuracy=") })
        #expect(last.time - first.time > 0.8, "the first line came as it was written, not with the end: \(received)")
    }

    @Test func badRequestsGetClearErrorsAndTCPNeedsTheToken() async throws {
        let dir = makeTemporaryDirectory()
        let home = "\(dir)/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try write("s3cret-token-of-32-characters-xx\n", to: "\(dir)/token")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: "\(dir)/token")
        let port = 20_000 + Int(getpid() % 20_000)
        let daemon = try await DaemonProcess.start(home: home, arguments: ["--listen", "127.0.0.1:\(port)", "--token-file", "\(dir)/token"])
        defer { kill(daemon.pid, SIGKILL) }

        let base = "http://127.0.0.1:\(port)"
        for client in [KnobClient(.tcp(baseURL: base, token: nil)), KnobClient(.tcp(baseURL: base, token: "wrong"))] {
            let (code, text) = await answer(client, "GET", "/v1/experiments")
            #expect(code == 401 && text.hasPrefix("Unauthorized"), "\(text)")
        }
        #expect(await answer(KnobClient(.tcp(baseURL: base, token: "s3cret-token-of-32-characters-xx")), "GET", "/v1/experiments").0 == 200)

        let socket = daemon.client
        let huge = Data(repeating: UInt8(ascii: "a"), count: 10 << 20)
        let (tooLarge, tooLargeText) = await answer(socket, "POST", "/v1/experiments", body: huge)
        #expect(tooLarge == 413 && tooLargeText.contains("larger than 1 MiB"), "status \(tooLarge): \(tooLargeText)")
        let (badYAML, badYAMLText) = await answer(socket, "POST", "/v1/experiments", body: Data("spec: [unclosed".utf8))
        #expect(badYAML == 422 && badYAMLText.contains("not valid YAML"), "\(badYAMLText)")
        let (badUTF8, badUTF8Text) = await answer(socket, "POST", "/v1/experiments", body: Data([0x66, 0xFF, 0xFE, 0x0A]))
        #expect(badUTF8 == 400 && badUTF8Text.contains("not valid UTF-8"), "\(badUTF8Text)")
        let (invalid, invalidText) = await answer(socket, "POST", "/v1/experiments",
                                                  body: Data(quickSpec("Bad_Name").replacingOccurrences(of: "maxTrialCount: 6", with: "maxTrialCount: 0").utf8))
        #expect(invalid == 422 && invalidText.contains("metadata.name") && invalidText.contains("spec.maxTrialCount"), "\(invalidText)")
        for path in ["/v1/experiments/..%2Fx", "/v1/experiments/..%2F..%2Fetc", "/v1/experiments/UPPER/trials"] {
            let (code, text) = await answer(socket, "GET", path)
            #expect(code == 400, "\(path): \(text)")
        }
        #expect(await answer(socket, "GET", "/v1/experiments/missing").0 == 404)
        #expect(await answer(socket, "POST", "/v1/experiments/missing/stop").0 == 404)
        // Still alive and well after all that.
        #expect(await answer(socket, "GET", "/healthz").0 == 200)
    }
}

/// Pieces of a streamed response with when they came.
final class ChunkLog: @unchecked Sendable {
    private let lock = NSLock()
    private var chunks: [(text: String, time: Double)] = []

    func append(_ text: String, at time: Double) {
        lock.lock()
        chunks.append((text, time))
        lock.unlock()
    }

    var all: [(text: String, time: Double)] {
        lock.lock()
        defer { lock.unlock() }
        return chunks
    }
}

@Suite struct SharedHomeTests {
    @Test func knobdLeavesAloneAnExperimentThatKnobRunDrives() async throws {
        let dir = makeTemporaryDirectory()
        // Trials wait until the test has knobd up, so that knob run still drives the experiment when knobd looks.
        try write("#!/bin/sh\nwhile [ ! -f '\(dir)/go' ]; do sleep 0.1; done\necho accuracy=0.5\n", to: "\(dir)/trial.sh", executable: true)
        try write(tinySpec(name: "local").replacingOccurrences(
            of: "command: [python3, trainer.py, \"--lr=${trialParameters.learningRate}\", \"--epochs=${trialParameters.epochs}\"]",
            with: "command: [./trial.sh, \"${trialParameters.learningRate}\", \"${trialParameters.epochs}\"]"), to: "\(dir)/spec.yaml")
        let home = "\(dir)/home"
        let run = try await LocalRunner().start(TrialLaunch(
            experimentName: "e2e", trialName: "run", argv: [knobExecutable, "run", "-f", "\(dir)/spec.yaml", "--home", home],
            workingDirectory: dir, environment: [:], logPath: "\(dir)/run.log", trialDirectory: "\(dir)/run"))
        // knobd starts once knob run has marked the experiment Running (knobd resumes only Running ones).
        for _ in 0..<200 {
            if FileManager.default.fileExists(atPath: "\(home)/knob.db"),
               let experiment = try? await KnobHome(home).openStore().experiment(named: "local"), experiment.status == .running { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let daemon = try await DaemonProcess.start(home: home)
        defer { kill(daemon.pid, SIGKILL) }
        try write("", to: "\(dir)/go")
        #expect(await run.wait() == .exited(0), "knob run finished the experiment itself")
        let object = try #require(try json(try await knob(["get", "local", "--home", home, "-o", "json"]).stdout) as? [String: Any])
        let view = try #require(object["knob"] as? [String: Any])
        #expect(view["status"] as? String == "Succeeded" && view["reason"] as? String == "MaxTrialsReached", "\(view)")
        let log = (try? String(contentsOfFile: "\(home)/knobd.log", encoding: .utf8)) ?? ""
        #expect(log.contains("experiment local is run by another knob process"))
    }

    /// knobd keeps its read routes' answers while the store is unchanged: what other processes commit
    /// to the store shows in its next answer.
    @Test func whatOtherProcessesWriteShowsInKnobdsNextAnswers() async throws {
        let dir = makeTemporaryDirectory()
        let home = "\(dir)/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let daemon = try await DaemonProcess.start(home: home)
        defer { kill(daemon.pid, SIGKILL) }
        for _ in 0..<2 { #expect(try await daemon.client.request("GET", "/v1/experiments").text == "[]") }
        try write("""
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: shared}
            spec:
              objective: {type: maximize, objectiveMetricName: accuracy}
              algorithm: {algorithmName: random}
              parallelTrialCount: 1
              maxTrialCount: 4
              parameters:
                - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
              trialTemplate:
                command: [/bin/echo, "accuracy=${trialParameters.x}"]
            """, to: "\(dir)/spec.yaml")
        let run = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", home])
        #expect(run.status == 0, "\(run.stderr)")
        let listed = try #require(try json(try await daemon.client.request("GET", "/v1/experiments").text) as? [[String: Any]])
        #expect(listed.map { $0["name"] as? String } == ["shared"] && listed.first?["status"] as? String == "Succeeded", "\(listed)")

        func best() async throws -> String? {
            let object = try json(try await daemon.client.request("GET", "/v1/experiments/shared/optimal").text) as? [String: Any]
            return (object?["currentOptimalTrial"] as? [String: Any])?["bestTrialName"] as? String
        }
        let trials = try #require(try json(try await daemon.client.request("GET", "/v1/experiments/shared/trials").text) as? [[String: Any]])
        let names = trials.compactMap { $0["name"] as? String }
        let before = try await best()
        #expect(before != nil && names.contains(before ?? ""))
        #expect(try await best() == before, "the kept answer")
        // Another process makes another trial the best.
        let other = try #require(names.first { $0 != before })
        let update = try await runToEnd("/usr/bin/env", ["python3", "-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("UPDATE trial SET objectiveValue = 5 WHERE name = ?", (sys.argv[2],))
            db.commit()
            """, "\(home)/knob.db", other])
        #expect(update.status == 0, "\(update.stderr)")
        #expect(try await best() == other)
        let after = try #require(try json(try await daemon.client.request("GET", "/v1/experiments/shared/trials?limit=4").text) as? [[String: Any]])
        #expect(after.first { $0["name"] as? String == other }?["objectiveValue"] as? Double == 5)
    }
}
