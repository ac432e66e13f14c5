import Foundation
import Knob
import Testing
@testable import Kubernetes

/// A trial's launch with its object given as it is (not from a spec: so that what validation refuses can be made too).
private struct RawLaunch {
    var launch: TrialLaunch
    var kubernetes: KubernetesLaunch
}

private func launch(_ manifestYAML: String, primary: String? = nil, namespace: String? = nil) throws -> RawLaunch {
    RawLaunch(launch: TrialLaunch(experimentName: "mnist", trialName: "mnist-3", argv: [], workingDirectory: "/", environment: [:],
                                  logPath: "/tmp/x.log", trialDirectory: "/tmp/x"),
              kubernetes: KubernetesLaunch(manifest: try SpecValue.parse("# trialSpec\n" + manifestYAML), namespace: namespace,
                                           primaryContainerName: primary, retain: false))
}

private extension TrialManifest {
    init(_ raw: RawLaunch, defaultNamespace: String, artifactsClaim: String? = nil, options: KubernetesOptions = KubernetesOptions()) throws {
        try self.init(raw.launch, kubernetes: raw.kubernetes, defaultNamespace: defaultNamespace, artifactsClaim: artifactsClaim, options: options)
    }
}

@Suite struct TrialManifestTests {
    @Test func aPodGetsTheTrialsNameLabelsEnvironmentAndNeverRestarts() throws {
        let manifest = try TrialManifest(launch("""
            apiVersion: v1
            kind: Pod
            metadata: {name: ignored, labels: {team: vision}}
            spec:
              containers:
                - name: sidecar
                  image: busybox
                - name: training
                  image: pytorch-mnist
                  env: [{name: KNOB_TRIAL, value: stale}, {name: DATA, value: /data}]
            """, primary: "training"), defaultNamespace: "default")
        #expect(manifest.kind == "Pod" && manifest.name == "mnist-3" && manifest.namespace == "default")
        #expect(manifest.primaryContainer == "training")
        let metadata = try #require(manifest.object["metadata"] as? JSONObject)
        #expect(metadata["name"] as? String == "mnist-3")
        let labels = try #require(metadata["labels"] as? [String: String])
        #expect(labels == ["team": "vision", "knob.dev/experiment": "mnist", "knob.dev/trial": "mnist-3",
                           "katib.kubeflow.org/experiment": "mnist", "katib.kubeflow.org/trial": "mnist-3"])
        let spec = try #require(manifest.object["spec"] as? JSONObject)
        #expect(spec["restartPolicy"] as? String == "Never")
        let containers = try #require(spec["containers"] as? [JSONObject])
        #expect(containers[0]["env"] == nil)
        let env = try #require(containers[1]["env"] as? [[String: String]])
        #expect(env == [["name": "DATA", "value": "/data"], ["name": "KATIB_TRIAL_NAME", "value": "mnist-3"],
                        ["name": "KNOB_EXPERIMENT", "value": "mnist"], ["name": "KNOB_TRIAL", "value": "mnist-3"]])
    }

    @Test func aJobsPodsCarryTheLabelsTooAndItsPolicyIsKept() throws {
        let manifest = try TrialManifest(launch("""
            apiVersion: batch/v1
            kind: Job
            metadata: {namespace: kubeflow}
            spec:
              backoffLimit: 0
              template:
                spec:
                  restartPolicy: OnFailure
                  containers: [{name: training-container, image: x}]
            """, namespace: "kubeflow"), defaultNamespace: "default")
        #expect(manifest.kind == "Job" && manifest.namespace == "kubeflow" && manifest.primaryContainer == "training-container")
        let template = try #require((manifest.object["spec"] as? JSONObject)?["template"] as? JSONObject)
        let labels = try #require((template["metadata"] as? JSONObject)?["labels"] as? [String: String])
        #expect(labels["knob.dev/trial"] == "mnist-3" && labels["katib.kubeflow.org/experiment"] == "mnist")
        #expect((template["spec"] as? JSONObject)?["restartPolicy"] as? String == "OnFailure")
        #expect((manifest.object["spec"] as? JSONObject)?["backoffLimit"] as? Int == 0)
    }

    @Test func anArtifactsClaimGivesThePrimaryContainerItsTrialsFolder() throws {
        let manifest = try TrialManifest(launch("""
            apiVersion: batch/v1
            kind: Job
            spec:
              template:
                spec:
                  volumes: [{name: data, emptyDir: {}}]
                  containers:
                    - {name: training-container, image: x, volumeMounts: [{name: data, mountPath: /data}],
                       env: [{name: KNOB_ARTIFACTS_DIR, value: /elsewhere}]}
                    - {name: other, image: y}
            """), defaultNamespace: "default", artifactsClaim: "models")
        let podSpec = try #require(((manifest.object["spec"] as? JSONObject)?["template"] as? JSONObject)?["spec"] as? JSONObject)
        let volumes = try #require(podSpec["volumes"] as? [JSONObject])
        #expect(volumes.map { $0["name"] as? String } == ["data", "knob-artifacts"])
        #expect((volumes[1]["persistentVolumeClaim"] as? [String: String]) == ["claimName": "models"])
        let containers = try #require(podSpec["containers"] as? [JSONObject])
        let mounts = try #require(containers[0]["volumeMounts"] as? [[String: String]])
        #expect(mounts == [["name": "data", "mountPath": "/data"],
                           ["name": "knob-artifacts", "mountPath": "/knob/artifacts", "subPath": "mnist/mnist-3/artifacts"]])
        let env = try #require(containers[0]["env"] as? [[String: String]])
        #expect(env.filter { $0["name"] == "KNOB_ARTIFACTS_DIR" } == [["name": "KNOB_ARTIFACTS_DIR", "value": "/knob/artifacts"]])
        #expect(containers[1]["volumeMounts"] == nil && containers[1]["env"] == nil)

        let taken = #expect(throws: ManifestError.self) {
            try TrialManifest(launch("{apiVersion: v1, kind: Pod, spec: {volumes: [{name: knob-artifacts, emptyDir: {}}], containers: [{name: a}]}}"),
                              defaultNamespace: "default", artifactsClaim: "models")
        }
        #expect(taken?.description.hasPrefix("spec.trialTemplate.trialSpec.spec.volumes: the name knob-artifacts is taken") == true)
        #expect(TrialManifest.isDNSSubdomain("models.team-a") && !TrialManifest.isDNSSubdomain("Models")
                && !TrialManifest.isDNSSubdomain("-x") && !TrialManifest.isDNSSubdomain("a/b") && !TrialManifest.isDNSSubdomain(""))
    }

    @Test func whatKnobCannotRunIsNamed() throws {
        let deployment = #expect(throws: ManifestError.self) {
            try TrialManifest(launch("{apiVersion: apps/v1, kind: Deployment, spec: {}}"), defaultNamespace: "default")
        }
        #expect(deployment?.description.hasPrefix("spec.trialTemplate.primaryContainerName: is required for apps/v1 Deployment trials") == true,
                "\(deployment?.description ?? "")")
        let wrongName = #expect(throws: ManifestError.self) {
            try TrialManifest(launch("{apiVersion: v1, kind: Pod, spec: {containers: [{name: a}, {name: b}]}}", primary: "main"),
                              defaultNamespace: "default")
        }
        #expect(wrongName?.description == "spec.trialTemplate.primaryContainerName: \"main\" is not a container of the trialSpec (its containers: a, b)")
        let empty = #expect(throws: ManifestError.self) {
            try TrialManifest(launch("{apiVersion: batch/v1, kind: Job, spec: {template: {spec: {containers: []}}}}"), defaultNamespace: "default")
        }
        #expect(empty?.description == "spec.trialTemplate.trialSpec.spec.template.spec.containers: the trial needs at least one container")
    }
}

@Suite struct LogWriterTests {
    @Test func aResumedStreamWritesNoLineTwice() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("knob-log-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = "\(dir)/trial.log"
        let first = LogWriter(logPath: path)
        first.switchTo(pod: "p")
        for line in ["2026-11-26T10:00:00.1Z epoch=1", "2026-11-26T10:00:00.5Z epoch=2", "2026-11-26T10:00:00.5Z epoch=2 again"] {
            first.write(Data(line.utf8))
        }
        // The stream dropped; it resumes with sinceTime=10:00:00 (whole seconds), so the same lines come again,
        // in a new process that only has the cursor file.
        let second = LogWriter(logPath: path)
        second.switchTo(pod: "p")
        #expect(second.cursor.time == KubeTime.parse("2026-11-26T10:00:00.5Z") && second.cursor.count == 2)
        for line in ["2026-11-26T10:00:00.1Z epoch=1", "2026-11-26T10:00:00.5Z epoch=2", "2026-11-26T10:00:00.5Z epoch=2 again",
                     "2026-11-26T10:00:00.5Z same instant, new line", "2026-11-26T10:00:01.25Z epoch=3"] {
            second.write(Data(line.utf8))
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == "epoch=1\nepoch=2\nepoch=2 again\nsame instant, new line\nepoch=3\n")
        // A Job's next pod starts its own log from the beginning.
        second.switchTo(pod: "q")
        second.write(Data("2026-11-26T09:59:59Z retry=1".utf8))
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasSuffix("epoch=3\nretry=1\n"))
    }

    @Test func kubeletTimestampsParseToTheNanosecond() {
        #expect(KubeTime.parse("2026-11-26T16:07:20.123456789Z") == KubeTime(seconds: 1_795_709_240, nanoseconds: 123_456_789))
        #expect(KubeTime.parse("2026-11-26T16:07:20.5Z")! > KubeTime.parse("2026-11-26T16:07:20.123456789Z")!)
        #expect(KubeTime.parse("2026-11-26T16:07:20Z")?.sinceTimeText == "2026-11-26T16:07:20Z")
        #expect(KubeTime.parse("not a time") == nil)
    }
}

/// A Job experiment with `collector` as its metricsCollectorSpec (indented YAML lines).
private func collectedJob(_ collector: String, podSpecExtra: String = "") throws -> TrialLaunch {
    let spec = try ExperimentSpec.parse("""
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: collected}
        spec:
          objective: {type: minimize, objectiveMetricName: loss, additionalMetricNames: [accuracy]}
          algorithm: {algorithmName: random}
          maxTrialCount: 2
          parameters:
            - {name: lr, parameterType: double, feasibleSpace: {min: "0.01", max: "0.1"}}
          metricsCollectorSpec:
        \(collector.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n"))
          trialTemplate:
            primaryContainerName: training
            trialParameters: [{name: lr, reference: lr}]
            trialSpec:
              apiVersion: batch/v1
              kind: Job
              spec:
                template:
                  spec:
                    restartPolicy: Never
        \(podSpecExtra)
                    containers:
                      - {name: training, image: trainer, command: [python3, train.py, "--lr=${trialParameters.lr}"]}
        """)
    return TrialLaunch(experimentName: "collected", trialName: "collected-1", argv: [], workingDirectory: "/", environment: [:],
                       logPath: "/tmp/x.log", trialDirectory: "/tmp/x", spec: spec, values: ["lr": "0.05"])
}

private func podSpec(_ manifest: TrialManifest) throws -> JSONObject {
    let spec = try #require(manifest.object["spec"] as? JSONObject)
    let template = try #require(spec["template"] as? JSONObject)
    return try #require(template["spec"] as? JSONObject)
}

@Suite struct CollectorSidecarTests {
    @Test func aFileCollectorIsANativeSidecarSharingTheFilesFolder() throws {
        let manifest = try TrialManifest(collectedJob("""
            collector: {kind: File}
            source:
              fileSystemPath: {path: /var/log/katib/metrics.log, kind: File, format: TEXT}
              filter: {metricsFormat: ["([\\\\w|-]+)\\\\s*=\\\\s*([+-]?\\\\d*(\\\\.\\\\d+)?)"]}
            """), defaultNamespace: "default", options: KubernetesOptions(metricsCollectorImage: "registry.local/busybox:1"))
        #expect(manifest.primaryContainer == "training" && manifest.logContainer == "knob-metrics-collector")
        let pod = try podSpec(manifest)
        let volumes = try #require(pod["volumes"] as? [JSONObject])
        #expect(volumes.count == 1 && volumes[0]["name"] as? String == "knob-metrics" && volumes[0]["emptyDir"] is JSONObject)
        let sidecar = try #require((pod["initContainers"] as? [JSONObject])?.first)
        #expect(sidecar["name"] as? String == "knob-metrics-collector" && sidecar["image"] as? String == "registry.local/busybox:1")
        #expect(sidecar["restartPolicy"] as? String == "Always")
        #expect((sidecar["command"] as? [String])?.last == "/var/log/katib/metrics.log")
        let mount: [String: String] = ["name": "knob-metrics", "mountPath": "/var/log/katib"]
        #expect(sidecar["volumeMounts"] as? [[String: String]] == [mount])
        let training = try #require((pod["containers"] as? [JSONObject])?.first)
        #expect(training["volumeMounts"] as? [[String: String]] == [mount])
    }

    @Test func aTensorFlowEventCollectorRunsKnobCollectAndNeedsItsImage() throws {
        let collector = "collector: {kind: TensorFlowEvent}\nsource:\n  fileSystemPath: {path: /var/log/katib/tfevent, kind: Directory}"
        #expect(throws: ManifestError.self) { try TrialManifest(collectedJob(collector), defaultNamespace: "default") }
        let manifest = try TrialManifest(collectedJob(collector), defaultNamespace: "default", options: KubernetesOptions(tfEventCollectorImage: "knob:1"))
        let sidecar = try #require((try podSpec(manifest)["initContainers"] as? [JSONObject])?.first)
        #expect(sidecar["image"] as? String == "knob:1")
        #expect(sidecar["command"] as? [String] == ["knob", "collect", "tfevents", "/var/log/katib/tfevent", "--follow", "-o", "json",
                                                    "--metric", "loss", "--metric", "accuracy"])
        #expect(sidecar["volumeMounts"] as? [[String: String]] == [["name": "knob-metrics", "mountPath": "/var/log/katib/tfevent"]])
    }

    @Test func aCustomCollectorIsTheUsersContainerAsASidecar() throws {
        let manifest = try TrialManifest(collectedJob("""
            collector:
              kind: Custom
              customCollector: {name: my-collector, image: me/collector:2, args: [--from, /metrics/out.txt]}
            source:
              fileSystemPath: {path: /metrics/out.txt, kind: File}
            """), defaultNamespace: "default")
        #expect(manifest.logContainer == "my-collector")
        let sidecar = try #require((try podSpec(manifest)["initContainers"] as? [JSONObject])?.first)
        #expect(sidecar["image"] as? String == "me/collector:2" && sidecar["args"] as? [String] == ["--from", "/metrics/out.txt"])
        #expect(sidecar["restartPolicy"] as? String == "Always")
        #expect(sidecar["volumeMounts"] as? [[String: String]] == [["name": "knob-metrics", "mountPath": "/metrics"]])
        // Without a path, nothing is shared: the collector finds the metrics its own way.
        let alone = try TrialManifest(collectedJob("collector: {kind: Custom, customCollector: {name: c, image: me/c}}"), defaultNamespace: "default")
        #expect(try podSpec(alone)["volumes"] == nil)
    }

    @Test func whatTheSidecarNeedsIsNotTakenFromTheTrial() throws {
        let file = "collector: {kind: File}\nsource: {fileSystemPath: {path: /var/log/katib/m.log}}"
        let volume = "            volumes: [{name: knob-metrics, emptyDir: {}}]"
        #expect(throws: ManifestError.self) { try TrialManifest(collectedJob(file, podSpecExtra: volume), defaultNamespace: "default") }
        let container = "            initContainers: [{name: knob-metrics-collector, image: x}]"
        #expect(throws: ManifestError.self) { try TrialManifest(collectedJob(file, podSpecExtra: container), defaultNamespace: "default") }
        // A stdout collector adds nothing.
        let plain = try TrialManifest(collectedJob("collector: {kind: StdOut}"), defaultNamespace: "default")
        let plainPod = try podSpec(plain)
        #expect(plain.logContainer == "training" && plainPod["initContainers"] == nil)
    }
}

/// The File collector's sidecar script, run by the system's sh: new bytes as they come, the file again
/// from its start when it shrinks, one more read when stopped, and a word when the file never came.
@Suite struct FileCollectorScriptTests {
    @Test func itPrintsTheFileAsItGrowsAndOnceMoreWhenStopped() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("knob-sidecar-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let file = "\(dir)/m.log", out = "\(dir)/out"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", TrialManifest.fileCollectorScript, "collector", file]
        FileManager.default.createFile(atPath: out, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        func printed() -> String { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }
        func waitFor(_ text: String) {
            while !printed().hasSuffix(text) { usleep(20_000) }
        }
        try "loss=1\n".write(toFile: file, atomically: false, encoding: .utf8)
        waitFor("loss=1\n")
        let handle = try #require(FileHandle(forWritingAtPath: file))
        handle.seekToEndOfFile()
        handle.write(Data("loss=2\n".utf8))
        waitFor("loss=2\n")
        // Truncated and written again: read from its start.
        try "loss=3\n".write(toFile: file, atomically: false, encoding: .utf8)
        waitFor("loss=3\n")
        handle.seekToEndOfFile()
        handle.write(Data("loss=4".utf8))
        process.terminate()
        process.waitUntilExit()
        #expect(printed() == "loss=1\nloss=2\nloss=3\nloss=4")
        #expect(process.terminationStatus == 0)
        #expect(errors.fileHandleForReading.readDataToEndOfFile().isEmpty)
    }

    @Test func aFileThatNeverCameIsNamed() throws {
        let said = FileManager.default.temporaryDirectory.appendingPathComponent("knob-sidecar-\(UUID().uuidString).err").path
        FileManager.default.createFile(atPath: said, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", TrialManifest.fileCollectorScript, "collector", "/nonexistent/knob/m.log"]
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: said))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // A SIGTERM before sh has set its trap would end it without a word: stop it until it says something.
        while process.isRunning {
            process.terminate()
            usleep(100_000)
        }
        #expect(try String(contentsOfFile: said, encoding: .utf8) == "knob-metrics-collector: /nonexistent/knob/m.log was never created\n")
    }
}
