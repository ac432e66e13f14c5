import Foundation
import Hummingbird
import HummingbirdTesting
import Knob
import Kubernetes
import Logging
import ServiceLifecycle
import Store
import Testing
import Yams
@testable import KnobServer

/// The API in-process: its routes against openapi.yaml, and its answers against the schemas there.
@Suite struct APITests {
    static let openAPIPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Sources/KnobServer/openapi.yaml").standardized.path

    static func openAPI() throws -> [String: Any] {
        try #require(try Yams.load(yaml: String(contentsOfFile: openAPIPath, encoding: .utf8)) as? [String: Any])
    }

    func makeAPI() throws -> (API, KnobHome, ExperimentManager) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("knob-api-\(UUID().uuidString)").path
        let home = KnobHome(dir)
        let store = try home.openStore()
        let manager = ExperimentManager(store: store, home: home, runners: RunnerSet([LocalRunner(), PodRunner()]),
                                        logger: Logger(label: "test"))
        // A group that never runs: experiments are accepted but not driven.
        manager.attach(to: ServiceGroup(configuration: ServiceGroupConfiguration(services: [any Service](), logger: Logger(label: "test"))))
        return (API(store: store, home: home, manager: manager), home, manager)
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() throws {
        let (api, _, _) = try makeAPI()
        let router = makeRouter(api, logger: Logger(label: "test"), token: nil)
        let served = Set(router.routes.map { route in
            // A path's rest (`**`) is documented as one parameter, {path}.
            let path = route.path.description.split(separator: "/").map { $0 == "**" ? "{path}" : $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
            return "\(route.method.rawValue) /" + path.joined(separator: "/")
        })
        let paths = try #require(try Self.openAPI()["paths"] as? [String: [String: Any]])
        let documented = Set(paths.flatMap { path, operations in
            operations.keys.filter { ["get", "post", "patch", "delete", "put"].contains($0) }.map { "\($0.uppercased()) \(path)" }
        })
        #expect(served == documented, "served but undocumented: \(served.subtracting(documented).sorted()); documented but not served: \(documented.subtracting(served).sorted())")
    }

    @Test func answersCarryTheFieldsTheSchemasRequire() async throws {
        let (api, home, _) = try makeAPI()
        let router = makeRouter(api, logger: Logger(label: "test"), token: nil)
        let app = Application(router: router)
        let schemas = try #require((try Self.openAPI()["components"] as? [String: Any])?["schemas"] as? [String: [String: Any]])
        let requiredFields = schemas.mapValues { Set($0["required"] as? [String] ?? []) }
        @Sendable func required(_ schema: String) -> Set<String> { requiredFields[schema] ?? [] }
        let spec = """
            apiVersion: kubeflow.org/v1beta1
            kind: Experiment
            metadata: {name: api}
            spec:
              objective: {type: maximize, objectiveMetricName: accuracy}
              algorithm: {algorithmName: random}
              maxTrialCount: 1
              parallelTrialCount: 1
              parameters:
                - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
              trialTemplate:
                command: [/bin/sh, -c, "echo accuracy=${trialParameters.x}"]
            """
        try await app.test(.router) { client in
            try await client.execute(uri: "/v1/experiments?directory=\(home.path)", method: .post, body: ByteBuffer(string: spec)) { response in
                #expect(response.status == .created)
                let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
                #expect(required("Experiment").isSubset(of: object.keys), "missing \(required("Experiment").subtracting(object.keys))")
            }
            try await client.execute(uri: "/v1/experiments/api/trials", method: .get) { response in
                let trials = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [[String: Any]])
                for trial in trials { #expect(required("Trial").isSubset(of: trial.keys), "missing \(required("Trial").subtracting(trial.keys))") }
            }
            try await client.execute(uri: "/v1/experiments/api/optimal", method: .get) { response in
                let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
                let optimal = try #require(object["currentOptimalTrial"] as? [String: Any])
                #expect(required("OptimalTrial").isSubset(of: optimal.keys))
            }
            try await client.execute(uri: "/v1/experiments/nope", method: .get) { response in
                #expect(response.status == .notFound)
                let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
                #expect(required("Error").isSubset(of: object.keys))
                #expect((object["error"] as? [String: Any])?["code"] as? String == "NotFound")
            }
        }
    }

    @Test func theDocumentIsValidOpenAPI() async throws {
        // openapi-spec-validator from PyPI (installed by .ci/install-deps).
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import sys, yaml; from openapi_spec_validator import validate; validate(yaml.safe_load(open(sys.argv[1]))); print('valid')", Self.openAPIPath]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(status == 0 && text.contains("valid"), "\(text)")
    }
}
