import Foundation
import Knob
import KnobClient
import Store
import Testing

/// knobd on a disk that fills up while an experiment runs: a small tmpfs, mounted and unmounted by
/// the test, is the knob home. Needs root (mount); skipped with a message otherwise.
@Suite(.serialized) struct DiskFullTests {
    static let trainer = """
        import sys, time
        lr = float(sys.argv[1])
        for epoch in range(1, 4):
            time.sleep(0.05)
            print(f"epoch {epoch} accuracy={epoch / 10 + lr:.6f} " + "x" * 2000, flush=True)
        """

    static let spec = tolerantSpec("full", trials: 60, parallel: 2)

    /// Mounts a tmpfs of `megabytes` at a new folder; nil (with the reason) when this machine does not allow it.
    func mountTmpfs(megabytes: Int) async throws -> (path: String?, reason: String) {
        guard getuid() == 0 else { return (nil, "not root") }
        let path = makeTemporaryDirectory("knob-tmpfs")
        let mount = try await runToEnd("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0755", "tmpfs", path])
        guard mount.status == 0 else { return (nil, "mount -t tmpfs failed: \(mount.stderr)") }
        return (path, "")
    }

    func experiment(_ daemon: DaemonProcess) async -> [String: Any]? {
        guard let response = try? await daemon.client.request("GET", "/v1/experiments/full", timeout: 5) else { return nil }
        return (try? json(response.text)) as? [String: Any]
    }

    @Test func aFullDiskStopsTheControllerAndKnobdPicksTheExperimentUpOnceSpaceIsBack() async throws {
        let (mounted, reason) = try await mountTmpfs(megabytes: 24)
        guard let home = mounted else {
            print("DiskFullTests skipped: \(reason) (the test mounts a tmpfs as the knob home; run it as root)")
            return
        }
        defer {
            // Lazily: trials left behind may still hold files open in it.
            let umount = Process()
            umount.executableURL = URL(fileURLWithPath: "/bin/umount")
            umount.arguments = ["-l", home]
            try? umount.run()
            umount.waitUntilExit()
        }
        let dir = makeTemporaryDirectory("knob-full")
        try write(Self.trainer, to: "\(dir)/trainer.py")
        let log = "\(dir)/knobd.log"
        let daemon = try await DaemonProcess.start(home: home, log: log)
        defer {
            kill(daemon.pid, SIGKILL)
        }
        try await daemon.client.request("POST", "/v1/experiments?directory=\(dir)", body: Data(Self.spec.utf8), contentType: "application/yaml")
        for _ in 0..<200 {
            if let view = await experiment(daemon), ((view["trials"] as? [String: Int])?["Succeeded"] ?? 0) >= 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }

        // Fill the disk.
        let filler = "\(home)/filler"
        let fill = try await runToEnd("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k"])
        #expect(fill.stderr.contains("No space left on device"), "the tmpfs is full: \(fill.stderr)")

        // The controller notices: the experiment is Failed (StoreUnavailable), or knobd says it retries.
        var outcome = ""
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, outcome.isEmpty {
            if let view = await experiment(daemon), view["status"] as? String == "Failed", view["reason"] as? String == "StoreUnavailable" {
                outcome = "failed"
            } else if let text = try? String(contentsOfFile: log, encoding: .utf8), text.contains("the store cannot be written") {
                outcome = "retrying"
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        print("disk full: the experiment was \(outcome.isEmpty ? "left as it was" : outcome)")
        #expect(!outcome.isEmpty, "the full disk was noticed:\n\(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").suffix(3000))")
        #expect((try? await daemon.client.request("GET", "/healthz", timeout: 5)) != nil, "knobd answers while the disk is full")
        #expect(kill(daemon.pid, 0) == 0, "knobd is alive")
        if outcome == "retrying" {
            let view = await experiment(daemon)
            #expect(view?["status"] as? String == "Running" && view?["driven"] as? Bool == true,
                    "a retried experiment is Running and owned by knobd: \(String(describing: view))")
        }

        // Space is back: the experiment is picked up again (or, when it was Failed, resumed by hand) and ends.
        unlink(filler)
        if outcome == "failed" {
            let resume = try await daemon.client.request("POST", "/v1/experiments/full/resume")
            #expect(resume.status == 202)
        }
        var final: [String: Any] = [:]
        let end = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < end {
            if let view = await experiment(daemon) {
                final = view
                if ["Succeeded", "Failed", "Stopped"].contains(view["status"] as? String ?? "") { break }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(final["status"] as? String == "Succeeded" && final["reason"] as? String == "MaxTrialsReached",
                "after space came back: \(final)\n\(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").suffix(3000))")
        #expect((try? await daemon.client.request("GET", "/healthz", timeout: 5)) != nil, "knobd answers")
        kill(daemon.pid, SIGTERM)
        _ = await daemon.process.wait()
    }
}
