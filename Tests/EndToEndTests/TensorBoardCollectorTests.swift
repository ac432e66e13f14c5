import Foundation
import Store
import Testing

/// A trainer that logs with tensorboardX: accuracy as TF1-style simple values (what add_scalar
/// writes), loss as TF2-style scalar tensors (as tf.summary.scalar writes them, with the "scalars"
/// plugin: the value in float_val, or packed in tensor_content), one event per epoch, into
/// $KNOB_TRIAL_DIR/tb.
let tensorboardTrainer = """
    import os, struct, sys, time
    from tensorboardX import SummaryWriter
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboardX.proto.tensor_pb2 import TensorProto
    lr = float(sys.argv[1].split("=", 1)[1])
    writer = SummaryWriter(os.path.join(os.environ["KNOB_TRIAL_DIR"], "tb"))
    def tf2_scalar(tag, value, step, packed):
        tensor = TensorProto(dtype=1, tensor_content=struct.pack("<f", value)) if packed else TensorProto(dtype=1, float_val=[value])
        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
        writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, tensor=tensor, metadata=metadata)]), step)
    for epoch in range(1, 5):
        accuracy = round(0.5 + epoch * 0.1 - abs(lr - 0.03), 4)
        writer.add_scalar("accuracy", accuracy, epoch)
        tf2_scalar("loss", 1.0 / epoch, epoch, packed=epoch % 2 == 0)
        writer.add_scalar("other", 7.0, epoch)
        writer.flush()
        print(f"epoch {epoch} written", flush=True)
        time.sleep(0.05)
    writer.close()
    """

@Suite struct TensorBoardCollectorTests {
    @Test func eventFilesAreReadAsTheTrainerWritesThem() async throws {
        let spec = """
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: tboard}
            spec:
              objective: {type: maximize, objectiveMetricName: accuracy, additionalMetricNames: [loss]}
              algorithm: {algorithmName: grid}
              parallelTrialCount: 2
              maxTrialCount: 2
              metricsCollectorSpec:
                collector: {kind: TensorFlowEvent}
                source:
                  fileSystemPath: {path: tb, kind: Directory}
              parameters:
                - {name: lr, parameterType: discrete, feasibleSpace: {list: ["0.01", "0.03"]}}
              trialTemplate:
                command: [python3, trainer.py, "--lr=${trialParameters.lr}"]
            """
        let (_, trials) = try await runWithTrainer(tensorboardTrainer, spec: spec, experiment: "tboard")
        #expect(trials.map(\.trial.state) == [.succeeded, .succeeded])
        for (trial, reports) in trials {
            let lr = Double(trial.value(of: "lr") ?? "") ?? .nan
            let accuracy = reports.filter { $0.name == "accuracy" }
            let loss = reports.filter { $0.name == "loss" }
            // Exactly what was written: 4 of each, with the epochs as steps; "other" was not asked for.
            #expect(accuracy.map(\.step) == [1, 2, 3, 4] && loss.map(\.step) == [1, 2, 3, 4])
            let expected = (1...4).map { Float(((0.5 + Double($0) * 0.1 - abs(lr - 0.03)) * 10_000).rounded() / 10_000) }
            #expect(accuracy.compactMap(\.value).map { Float($0) } == expected, "\(accuracy.map(\.value))")
            #expect(loss.compactMap(\.value).map { Float($0) } == (1...4).map { 1 / Float($0) })
            #expect(reports.count == 8)
            #expect(trial.objectiveValue.map { Float($0) } == expected.max())
        }
    }
}
