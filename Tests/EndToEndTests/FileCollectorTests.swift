import Foundation
import Store
import Testing

/// A local trial writes its metrics to a file (Katib's File collector): TEXT read with Katib's own filter, or
/// JSON lines. Each trial's stored reports are what it wrote there, and nothing it printed.
let fileTrainer = """
    import json, os, sys, time
    lr = float(sys.argv[1])
    kind = sys.argv[2]
    folder = os.path.join(os.environ["KNOB_TRIAL_DIR"], "metrics")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "m." + kind), "a") as f:
        for epoch in range(1, 5):
            accuracy, loss = round(0.5 + lr * epoch, 6), round(1 / (epoch + lr), 6)
            print("accuracy=9 loss=9", flush=True)
            if kind == "json":
                f.write(json.dumps({"accuracy": accuracy, "loss": str(loss), "epoch": epoch}) + "\\n")
            else:
                f.write(f"{{metricName: accuracy, metricValue: {accuracy}}}\\n{{metricName: loss, metricValue: {loss}}}\\n")
            f.flush()
            time.sleep(0.05)
    """

@Suite struct FileCollectorTests {
    @Test(arguments: ["text", "json"])
    func aTrialsMetricsFileIsReadAsItWasWritten(_ kind: String) async throws {
        let source = kind == "json"
            ? "fileSystemPath: {path: metrics/m.json, kind: File, format: JSON}"
            : "fileSystemPath: {path: metrics/m.text, kind: File, format: TEXT}\n      filter: {metricsFormat: [\"{metricName: ([\\\\w|-]+), metricValue: ((-?\\\\d+)(\\\\.\\\\d+)?)}\"]}"
        let spec = """
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: filed}
            spec:
              objective: {type: maximize, objectiveMetricName: accuracy, additionalMetricNames: [loss]}
              algorithm: {algorithmName: grid}
              parallelTrialCount: 2
              maxTrialCount: 2
              metricsCollectorSpec:
                collector: {kind: File}
                source:
                  \(source)
              parameters:
                - {name: lr, parameterType: discrete, feasibleSpace: {list: ["0.01", "0.03"]}}
              trialTemplate:
                command: [python3, trainer.py, "${trialParameters.lr}", \(kind)]
            """
        let (_, trials) = try await runWithTrainer(fileTrainer, spec: spec, experiment: "filed")
        #expect(trials.map(\.trial.state) == [.succeeded, .succeeded])
        for (trial, reports) in trials {
            let lr = Double(trial.value(of: "lr") ?? "") ?? .nan
            let accuracy = reports.filter { $0.name == "accuracy" }.compactMap(\.value)
            let loss = reports.filter { $0.name == "loss" }.compactMap(\.value)
            func rounded(_ value: Double) -> Double { (value * 1e6).rounded() / 1e6 }
            #expect(accuracy == (1...4).map { rounded(0.5 + lr * Double($0)) })
            #expect(loss == (1...4).map { rounded(1 / (Double($0) + lr)) })
            #expect(reports.count == 8, "the printed 9s are not the file's")
            if kind == "json" { #expect(reports.filter { $0.name == "loss" }.map(\.step) == [1, 2, 3, 4]) }
        }
    }
}
