import Foundation
import Hummingbird
import HummingbirdTesting
import Knob
import Kubernetes
import Logging
import ServiceLifecycle
import Testing
@testable import KnobServer

/// What the API says of Push experiments it cannot serve, and of pushes it must refuse before any trial runs.
@Suite struct PushAPITests {
    static let kubernetesPushSpec = """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: kpush}
        spec:
          objective: {type: maximize, objectiveMetricName: accuracy}
          algorithm: {algorithmName: random}
          maxTrialCount: 1
          parallelTrialCount: 1
          metricsCollectorSpec: {collector: {kind: Push}}
          parameters:
            - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
          trialTemplate:
            trialParameters: [{name: x, reference: x}]
            trialSpec:
              apiVersion: batch/v1
              kind: Job
              spec:
                template:
                  spec:
                    containers: [{name: training-container, image: trainer, command: [train, "${trialParameters.x}"]}]
        """

    func makePushRouter(push: PushEndpoints, token: String? = nil) throws -> (Router<BasicRequestContext>, KnobHome) {
        let home = KnobHome(FileManager.default.temporaryDirectory.appendingPathComponent("knob-push-\(UUID().uuidString)").path)
        let store = try home.openStore()
        let manager = ExperimentManager(store: store, home: home, runners: RunnerSet([LocalRunner(), PodRunner()]),
                                        logger: Logger(label: "test"), push: push)
        manager.attach(to: ServiceGroup(configuration: ServiceGroupConfiguration(services: [any Service](), logger: Logger(label: "test"))))
        return (makeRouter(API(store: store, home: home, manager: manager, push: push), logger: Logger(label: "test"), token: token), home)
    }

    @Test func aKubernetesPushExperimentNeedsThePushURL() async throws {
        let (router, home) = try makePushRouter(push: PushEndpoints(local: "unix:///tmp/knobd.sock"))
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/v1/experiments?directory=\(home.path)", method: .post,
                                     body: ByteBuffer(string: Self.kubernetesPushSpec)) { response in
                #expect(response.status == .unprocessableContent)
                let text = String(buffer: response.body)
                #expect(text.contains("--push-url") && text.contains("kpush"), "\(text)")
            }
            try await client.execute(uri: "/v1/experiments/kpush", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
        let (served, otherHome) = try makePushRouter(push: PushEndpoints(local: "unix:///tmp/knobd.sock", kubernetes: "http://knobd:8123"))
        try await Application(router: served).test(.router) { client in
            try await client.execute(uri: "/v1/experiments?directory=\(otherHome.path)", method: .post,
                                     body: ByteBuffer(string: Self.kubernetesPushSpec)) { response in
                #expect(response.status == .created, "\(String(buffer: response.body))")
            }
        }
    }

    @Test func onTCPAPushNeedsATrialsTokenNotTheDaemons() async throws {
        let (router, _) = try makePushRouter(push: PushEndpoints(local: "unix:///tmp/knobd.sock"), token: "daemon-token-0123456789")
        try await Application(router: router).test(.router) { client in
            // Past the daemon's token check without it; refused by the route for want of the trial's.
            try await client.execute(uri: "/v1/experiments/nope/trials/nope-1/metrics", method: .post,
                                     body: ByteBuffer(string: #"{"accuracy": 1}"#)) { response in
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("KNOB_PUSH_TOKEN"))
            }
            try await client.execute(uri: "/v1/experiments/nope/trials/nope-1/metrics", method: .post,
                                     headers: [.authorization: "Bearer daemon-token-0123456789"],
                                     body: ByteBuffer(string: #"{"accuracy": 1}"#)) { response in
                #expect(response.status == .notFound)
            }
            // Every other route still needs the daemon's token.
            try await client.execute(uri: "/v1/experiments/nope/trials/nope-1/metrics", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("--token-file"))
            }
        }
    }
}
