import Foundation
import Knob
import KnobAlgorithms
import KnobClient
import Store
import Testing

/// A hyperband experiment on knobd, which is killed with SIGKILL in the middle of its brackets and
/// started again each time: the run must end with the trials and promotions of an uninterrupted run.
@Suite(.serialized) struct HyperbandCrashTests {
    /// Reports one line per epoch; the final accuracy depends on lr and on the epochs it was given.
    static let trainer = """
        import sys, time
        lr = float(sys.argv[1])
        epochs = int(sys.argv[2])
        for epoch in range(1, epochs + 1):
            time.sleep(0.2)
            print(f"epoch {epoch} accuracy={1 - (lr - 0.3) * (lr - 0.3) - 0.3 / epoch:.6f}", flush=True)
        """

    static let spec = """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: hb}
        spec:
          objective: {type: maximize, objectiveMetricName: accuracy}
          algorithm:
            algorithmName: hyperband
            algorithmSettings:
              - {name: resource_name, value: epochs}
              - {name: r_l, value: "9"}
              - {name: eta, value: "3"}
              - {name: random_state, value: "5"}
          parallelTrialCount: 3
          parameters:
            - {name: lr, parameterType: double, feasibleSpace: {min: "0.01", max: "0.9"}}
            - {name: epochs, parameterType: int, feasibleSpace: {min: "1", max: "9"}}
          trialTemplate:
            command: [python3, trainer.py, "${trialParameters.lr}", "${trialParameters.epochs}"]
        """

    /// A trial as the API shows it: where it stands in the schedule, and whether it has ended.
    struct Seen {
        var bracket: Int
        var rung: Int
        var ended: Bool
    }

    /// Moments to kill knobd at, each the first poll at which it holds: a trial has ended (rung 0 of
    /// the first bracket is under way), a promotion was made, the last bracket has started.
    static let killPoints: [(String, @Sendable ([Seen]) -> Bool)] = [
        ("a first trial ended", { $0.contains(where: \.ended) }),
        ("a rung above 0 began", { $0.contains { $0.rung > 0 } }),
        ("bracket 0 began", { $0.contains { $0.bracket == 0 } }),
    ]

    @Test func killingKnobdInTheMiddleOfABracketChangesNoPromotion() async throws {
        let dir = makeTemporaryDirectory("knob-hyperband-crash")
        let home = "\(dir)/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try write(Self.trainer, to: "\(dir)/trainer.py")
        let parsed = try ExperimentSpec.parse(Self.spec)

        var midBracketKills = 0
        var killed = 0
        var finished = false
        var daemon = try await DaemonProcess.start(home: home, log: "\(home)/knobd-0.log")
        try await daemon.client.request("POST", "/v1/experiments?directory=\(dir)", body: Data(Self.spec.utf8), contentType: "application/yaml")
        // A bound on the whole run, so that a stuck experiment fails the test instead of hanging it.
        let deadline = Date().addingTimeInterval(300)
        while !finished, Date() < deadline {
            let view = try? json(try await daemon.client.request("GET", "/v1/experiments/hb").text) as? [String: Any]
            if let status = view?["status"] as? String, ["Succeeded", "Failed"].contains(status) {
                finished = true
                break
            }
            guard killed < Self.killPoints.count,
                  let trials = try? json(try await daemon.client.request("GET", "/v1/experiments/hb/trials").text) as? [[String: Any]] else {
                try await Task.sleep(for: .milliseconds(30))
                continue
            }
            let seen = trials.compactMap { trial -> Seen? in
                guard let metadata = trial["suggesterMetadata"] as? [String: String],
                      let bracket = metadata["hyperband.bracket"].flatMap(Int.init), let rung = metadata["hyperband.rung"].flatMap(Int.init),
                      let state = trial["state"] as? String else { return nil }
                return Seen(bracket: bracket, rung: rung, ended: !["Pending", "Running"].contains(state))
            }
            let (moment, holds) = Self.killPoints[killed]
            guard holds(seen) else {
                try await Task.sleep(for: .milliseconds(30))
                continue
            }
            // In the middle of a bracket: some of its trials have ended, and not all of its last rung has.
            let brackets = Set(seen.map(\.bracket))
            if brackets.contains(where: { s in
                let own = seen.filter { $0.bracket == s }
                return own.contains(where: \.ended) && !own.contains { $0.rung == s && $0.ended }
            }) {
                midBracketKills += 1
            }
            kill(daemon.pid, SIGKILL)
            _ = await daemon.process.wait()
            killed += 1
            print("hyperband crash: killed knobd when \(moment) (\(seen.count) trials, \(seen.filter(\.ended).count) ended)")
            daemon = try await DaemonProcess.start(home: home, log: "\(home)/knobd-\(killed).log")
        }
        kill(daemon.pid, SIGTERM)
        _ = await daemon.process.wait()
        #expect(finished, "the experiment ended")
        #expect(killed == Self.killPoints.count, "knobd was killed at every kill point")
        #expect(midBracketKills > 0, "a kill came in the middle of a bracket")

        let store = try Store(path: "\(home)/knob.db")
        let experiment = try #require(try await store.experiment(named: "hb"))
        #expect(experiment.status == .succeeded && experiment.reason == "SearchSpaceExhausted", "\(experiment.status) \(experiment.reason) \(experiment.message)")
        let trials = try await store.trials(of: experiment.id!)
        #expect(trials.map(\.sequence) == Array(1...trials.count), "sequence numbers are unique and gapless")
        for trial in trials {
            #expect(trial.state == .succeeded && trial.exitCode == 0, "\(trial.name) \(trial.state) \(trial.message)")
        }

        // The uninterrupted run: the same suggester driven in memory, each trial ending with the value
        // the trainer prints for it.
        let suggester = try HyperbandSuggester(context: SuggesterContext(
            space: parsed.searchSpace, settings: parsed.algorithm.settingsByName, seed: 0))
        var history = History()
        while let next = try? suggester.suggest(count: 1, history: history).first {
            let lr = next.assignment["lr"]!.numericValue!, epochs = next.assignment["epochs"]!.numericValue!
            let accuracy = Double(String(format: "%.6f", 1 - (lr - 0.3) * (lr - 0.3) - 0.3 / epochs))!
            history.trials.append(.init(assignment: next.assignment, outcome: .completed(-accuracy), metadata: next.metadata))
        }
        #expect(history.trials.count == suggester.schedule.trialCount)

        func row(_ metadata: [String: String], _ values: [String]) -> [String] {
            ["hyperband.bracket", "hyperband.rung", "hyperband.config"].map { metadata[$0] ?? "-" } + values
        }
        let expected = history.trials.map { trial in
            row(trial.metadata, parsed.searchSpace.parameters.map { trial.assignment[$0.name]!.description })
        }
        let actual = trials.map { trial in row(trial.suggesterMetadata, parsed.searchSpace.parameters.map { trial.value(of: $0.name) ?? "-" }) }
        #expect(Set(actual).count == actual.count, "no rung's trial was created twice")
        #expect(actual.count == expected.count, "\(actual.count) trials, an uninterrupted run has \(expected.count)")
        #expect(Set(actual) == Set(expected), "the same trials as an uninterrupted run: \(Set(actual).symmetricDifference(Set(expected)))")
    }
}
