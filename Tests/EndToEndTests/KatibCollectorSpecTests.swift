import Foundation
import Testing
import Yams

/// Specs shaped as Katib's v1beta1 metrics-collector examples are (a Job trial with `primaryContainerName`,
/// the collector and its source, Katib's own filter, a Custom container with a downward-API variable):
/// `knob validate` takes them, and `--render` shows the Job each trial gets, its collector beside it.
@Suite struct KatibCollectorSpecTests {
    static func spec(name: String, objective: String = "accuracy", collector: String, logFlag: String) -> String {
        """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata:
          namespace: kubeflow
          name: \(name)
        spec:
          objective:
            type: maximize
            goal: 0.99
            objectiveMetricName: \(objective)
          metricsCollectorSpec:
        \(collector.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n"))
          algorithm:
            algorithmName: random
          parallelTrialCount: 3
          maxTrialCount: 12
          maxFailedTrialCount: 3
          parameters:
            - name: lr
              parameterType: double
              feasibleSpace: {min: "0.01", max: "0.03"}
            - name: momentum
              parameterType: double
              feasibleSpace: {min: "0.3", max: "0.7"}
          trialTemplate:
            primaryContainerName: training-container
            trialParameters:
              - {name: learningRate, description: Learning rate, reference: lr}
              - {name: momentum, description: Momentum, reference: momentum}
            trialSpec:
              apiVersion: batch/v1
              kind: Job
              spec:
                template:
                  spec:
                    containers:
                      - name: training-container
                        image: registry.example/mnist:1
                        command:
                          - "python3"
                          - "/opt/mnist/train.py"
                          - "\(logFlag)"
                          - "--lr=${trialParameters.learningRate}"
                          - "--momentum=${trialParameters.momentum}"
                    restartPolicy: Never
        """
    }

    static let examples: [(name: String, collector: String, logFlag: String, folder: String, sidecar: String)] = [
        ("file-with-filter", """
            source:
              filter:
                metricsFormat:
                  - "{metricName: ([\\\\w|-]+), metricValue: ((-?\\\\d+)(\\\\.\\\\d+)?)}"
              fileSystemPath:
                path: "/katib/mnist.log"
                kind: File
            collector:
              kind: File
            """, "--log-path=/katib/mnist.log", "/katib", "knob-metrics-collector"),
        ("file-default-format", """
            source:
              fileSystemPath: {path: /var/log/katib/metrics.log, kind: File}
            collector: {kind: File}
            """, "--log-path=/var/log/katib/metrics.log", "/var/log/katib", "knob-metrics-collector"),
        ("file-json", """
            source:
              fileSystemPath:
                path: "/katib/mnist.json"
                kind: File
                format: JSON
            collector:
              kind: File
            """, "--log-path=/katib/mnist.json", "/katib", "knob-metrics-collector"),
        ("tfevent", """
            source:
              fileSystemPath:
                path: /train
                kind: Directory
            collector:
              kind: TensorFlowEvent
            """, "--log_dir=/train/metrics", "/train", "knob-metrics-collector"),
        ("custom", """
            source:
              fileSystemPath:
                path: "/katib/mnist.log"
                kind: File
            collector:
              kind: Custom
              customCollector:
                args: [-m, accuracy, -path, /katib/mnist.log]
                image: registry.example/my-collector:latest
                imagePullPolicy: Always
                name: custom-metrics-logger-and-collector
                env:
                  - name: TrialNamePrefix
                    valueFrom:
                      fieldRef:
                        fieldPath: metadata.name
            """, "--log-path=/katib/mnist.log", "/katib", "custom-metrics-logger-and-collector"),
    ]

    @Test(arguments: examples.map(\.name))
    func katibsCollectorExamplesValidateAndRender(_ name: String) async throws {
        let example = try #require(Self.examples.first { $0.name == name })
        let dir = makeTemporaryDirectory()
        let path = "\(dir)/\(name).yaml"
        try write(Self.spec(name: name, collector: example.collector, logFlag: example.logFlag), to: path)

        let validated = try await knob(["validate", "-f", path, "-o", "json"])
        #expect(validated.status == 0, "\(validated.stdout)\(validated.stderr)")
        #expect((try json(validated.stdout) as? [String: Any])?["valid"] as? Bool == true)

        let rendered = try await knob(["validate", "-f", path, "--render"])
        #expect(rendered.status == 0, "\(rendered.stderr)")
        let yaml = rendered.stdout.split(separator: "\n").drop { $0.hasPrefix("#") }.joined(separator: "\n")
        let job = try #require(try Yams.load(yaml: yaml) as? [String: Any])
        let pod = try #require(((job["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let sidecar = try #require((pod["initContainers"] as? [[String: Any]])?.first)
        #expect(sidecar["name"] as? String == example.sidecar && sidecar["restartPolicy"] as? String == "Always")
        let mount = ["name": "knob-metrics", "mountPath": example.folder]
        #expect(sidecar["volumeMounts"] as? [[String: String]] == [mount])
        let trainer = try #require((pod["containers"] as? [[String: Any]])?.first)
        #expect(trainer["volumeMounts"] as? [[String: String]] == [mount])
        #expect((trainer["command"] as? [String])?.contains(example.logFlag) == true)
        if name == "custom" {
            #expect((sidecar["env"] as? [[String: Any]])?.first?["name"] as? String == "TrialNamePrefix")
        }
    }
}
