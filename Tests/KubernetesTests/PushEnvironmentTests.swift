import Foundation
import Knob
import Testing
@testable import Kubernetes

@Suite struct PushEnvironmentTests {
    @Test func aPushTrialsPrimaryContainerGetsTheURLAndItsTokenAndOnlyIt() throws {
        let manifest = try SpecValue.parse("""
            # trialSpec
            apiVersion: v1
            kind: Pod
            spec:
              containers:
                - {name: sidecar, image: busybox}
                - name: training
                  image: trainer
                  env: [{name: KNOB_PUSH_TOKEN, value: stale}]
            """)
        let launch = TrialLaunch(experimentName: "mnist", trialName: "mnist-3", argv: [], workingDirectory: "/", environment: [:],
                                 logPath: "/tmp/x.log", trialDirectory: "/tmp/x",
                                 push: PushCredentials(url: "http://knobd.ml.svc:8123", token: String(repeating: "ab", count: 32)))
        let trial = try TrialManifest(launch, kubernetes: KubernetesLaunch(manifest: manifest, namespace: nil, primaryContainerName: "training", retain: false),
                                      defaultNamespace: "default")
        let containers = try #require((trial.object["spec"] as? JSONObject)?["containers"] as? [JSONObject])
        #expect(containers[0]["env"] == nil)
        let env = try #require(containers[1]["env"] as? [[String: String]])
        #expect(env.filter { $0["name"]!.hasPrefix("KNOB_PUSH") } == [
            ["name": "KNOB_PUSH_TOKEN", "value": String(repeating: "ab", count: 32)],
            ["name": "KNOB_PUSH_URL", "value": "http://knobd.ml.svc:8123"],
        ])
        #expect(env.contains(["name": "KNOB_TRIAL", "value": "mnist-3"]) && env.contains(["name": "KNOB_EXPERIMENT", "value": "mnist"]))
    }
}
