import Foundation
import Knob
import KnobAlgorithms
import KnobClient
import Store
import Testing

/// Kills knobd with SIGKILL at random moments while an experiment runs, restarts it, and checks
/// that nothing was lost or counted twice. Rounds: KNOB_CRASH_ROUNDS (default 3); seed:
/// KNOB_CRASH_SEED (default 42).
@Suite(.serialized) struct CrashTests {
    static let epochs = 5

    static let trainer = """
        import sys, time
        lr = float(sys.argv[1])
        for epoch in range(1, \(epochs + 1)):
            time.sleep(0.08)
            print(f"epoch {epoch} accuracy={epoch / 10 + lr:.6f}", flush=True)
        """

    @Test func killingTheDaemonLosesNothingAndCountsNothingTwice() async throws {
        let environment = ProcessInfo.processInfo.environment
        let rounds = environment["KNOB_CRASH_ROUNDS"].flatMap(Int.init) ?? 3
        let seed = environment["KNOB_CRASH_SEED"].flatMap(UInt64.init) ?? 42
        var rng = SeededGenerator(seed: seed)
        var adoptions = 0
        for round in 1...rounds {
            adoptions += try await crashRound(round, rng: &rng)
        }
        #expect(adoptions > 0, "some kill hit running trials, and they were followed again")
    }

    /// One experiment driven to its end through random kills; returns how many times trials were adopted.
    func crashRound(_ round: Int, rng: inout SeededGenerator) async throws -> Int {
        let dir = makeTemporaryDirectory("knob-crash")
        let home = "\(dir)/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try write(Self.trainer, to: "\(dir)/trainer.py")
        let spec = quickSpec("crash", trials: 12, parallel: 3)
        var kills = 0
        var created = false
        var finished = false
        while !finished {
            let daemon = try await DaemonProcess.start(home: home, log: "\(home)/knobd-\(kills).log")
            if !created {
                try await daemon.client.request("POST", "/v1/experiments?directory=\(dir)", body: Data(spec.utf8), contentType: "application/yaml")
                created = true
            }
            let killAfter = 0.2 + rng.unit() * 1.0
            let start = Date()
            while Date().timeIntervalSince(start) < killAfter {
                if let view = try? await daemon.client.request("GET", "/v1/experiments/crash"),
                   let object = try? json(view.text) as? [String: Any], ["Succeeded", "Failed"].contains(object["status"] as? String ?? "") {
                    finished = true
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            if finished || kills >= 40 {
                kill(daemon.pid, SIGTERM)
                _ = await daemon.process.wait()
                break
            }
            // Mostly a crash; now and then a clean shutdown, which must leave trials running too.
            kill(daemon.pid, rng.unit() < 0.75 ? SIGKILL : SIGTERM)
            _ = await daemon.process.wait()
            kills += 1
        }
        #expect(finished, "round \(round): the experiment ended within \(kills) kills")

        let store = try Store(path: "\(home)/knob.db")
        let experiment = try #require(try await store.experiment(named: "crash"))
        #expect(experiment.status == .succeeded && experiment.reason == "MaxTrialsReached", "round \(round): \(experiment.status) \(experiment.reason) \(experiment.message)")
        let trials = try await store.trials(of: experiment.id!)
        #expect(trials.count == 12, "round \(round): exactly maxTrialCount trials")
        #expect(trials.map(\.sequence) == Array(1...trials.count), "round \(round): sequence numbers are unique and gapless")
        for trial in trials {
            #expect(trial.state == .succeeded && trial.exitCode == 0, "round \(round): \(trial.name) \(trial.state) \(trial.message)")
            let reports = try await store.metrics(ofTrial: trial.id!)
            #expect(reports.map(\.step) == Array(1...Self.epochs), "round \(round): \(trial.name) reports \(reports.map(\.step)) — each exactly once")
            let lr = Double(trial.value(of: "lr")!)!
            let expected = (1...Self.epochs).map { Double(String(format: "%.6f", Double($0) / 10 + lr))! }
            #expect(reports.map(\.value) == expected.map { Optional($0) }, "round \(round): \(trial.name) values")
        }
        let adopted = try await store.events(of: experiment.id!).filter { $0.kind == "TrialsAdopted" }.count
        print("crash round \(round): \(kills) kills, \(adopted) restarts adopted running trials")
        return adopted
    }
}
