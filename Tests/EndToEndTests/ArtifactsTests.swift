import Foundation
import KnobClient
import Testing

@Suite struct ArtifactsTests {
    /// A trainer that saves a "model" (its accuracy, as text) and a nested file in KNOB_ARTIFACTS_DIR.
    static let trainer = """
        import os, sys
        lr = float(sys.argv[1].split("=", 1)[1])
        accuracy = 0.9 - abs(lr - 0.03)
        folder = os.environ["KNOB_ARTIFACTS_DIR"]
        os.makedirs(os.path.join(folder, "plots"), exist_ok=True)
        open(os.path.join(folder, "model.txt"), "w").write(f"lr={lr}\\n")
        open(os.path.join(folder, "plots", "curve.csv"), "w").write("step,accuracy\\n1,%s\\n" % accuracy)
        print(f"accuracy={accuracy}")
        """

    static let spec = """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: saved}
        spec:
          objective: {type: maximize, objectiveMetricName: accuracy}
          algorithm: {algorithmName: grid}
          parallelTrialCount: 1
          maxTrialCount: 3
          parameters:
            - {name: lr, parameterType: discrete, feasibleSpace: {list: ["0.01", "0.03", "0.05"]}}
          trialTemplate:
            command: [python3, trainer.py, "--lr=${trialParameters.lr}"]
        """

    @Test func theBestTrialsArtifactsAreListedAndFetchedWithOrWithoutKnobd() async throws {
        let dir = makeTemporaryDirectory()
        try write(Self.trainer, to: "\(dir)/trainer.py")
        try write(Self.spec, to: "\(dir)/spec.yaml")
        let home = "\(dir)/home"
        let run = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", home])
        #expect(run.status == 0, "\(run.stderr)")

        // From the store: the best trial is saved-2 (lr 0.03).
        let listed = try await knob(["artifacts", "saved", "--best", "--home", home])
        #expect(listed.status == 0)
        #expect(listed.stdout == "model.txt\t8\nplots/curve.csv\t20\n", "\(listed.stdout)")
        let copied = try await knob(["artifacts", "saved", "--best", "-o", "\(dir)/out", "--home", home])
        #expect(copied.status == 0, "\(copied.stderr)")
        #expect(try String(contentsOfFile: "\(dir)/out/model.txt", encoding: .utf8) == "lr=0.03\n")
        #expect(try String(contentsOfFile: "\(dir)/out/plots/curve.csv", encoding: .utf8) == "step,accuracy\n1,0.9\n")

        // Through knobd: the same list, the same bytes, and nothing outside the trial's folder.
        let daemon = try await DaemonProcess.start(home: home)
        defer { kill(daemon.pid, SIGTERM) }
        let viaAPI = try await knob(["artifacts", "saved", "saved-1", "-o", "\(dir)/api", "--home", home])
        #expect(viaAPI.status == 0, "\(viaAPI.stderr)")
        #expect(try String(contentsOfFile: "\(dir)/api/model.txt", encoding: .utf8) == "lr=0.01\n")
        let list = try await daemon.client.request("GET", "/v1/experiments/saved/trials/saved-3/artifacts")
        let entries = try #require(try json(list.text) as? [[String: Any]])
        #expect(entries.map { $0["path"] as? String } == ["model.txt", "plots/curve.csv"])
        for hostile in ["..%2F..%2F..%2Fknob.db", "../../../knob.db", "plots%2F..%2F..%2Fsaved-1%2Fartifacts%2Fmodel.txt", "plots", "nothing"] {
            let (code, text) = await answer(daemon.client, "GET", "/v1/experiments/saved/trials/saved-3/artifacts/\(hostile)")
            #expect(code == 404 || code == 400, "\(hostile): \(code) \(text)")
        }
        let none = try await knob(["artifacts", "saved", "--home", home])
        #expect(none.status == 2 && none.stderr.contains("name a trial"), "\(none.stderr)")
    }
}
