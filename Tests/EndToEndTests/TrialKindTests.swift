import Foundation
import KnobClient
import Testing

/// A Katib spec whose trialSpec is an Argo Workflow without the conditions that say when it has ended.
let workflowSpec = """
    apiVersion: kubeflow.org/v1beta1
    kind: Experiment
    metadata: {name: workflow}
    spec:
      objective: {type: maximize, objectiveMetricName: accuracy}
      algorithm: {algorithmName: random}
      maxTrialCount: 2
      parameters:
        - {name: lr, parameterType: double, feasibleSpace: {min: "0.01", max: "0.1"}}
      trialTemplate:
        trialParameters:
          - {name: learningRate, reference: lr}
        trialSpec:
          apiVersion: argoproj.io/v1alpha1
          kind: Workflow
          spec:
            entrypoint: train
            templates:
              - name: train
                container: {image: python:3.11, command: [python3, "--lr=${trialParameters.learningRate}"]}
    """

@Suite struct TrialKindTests {
    /// validate (table and JSON, with the same exit code), run and the API refuse the same spec.
    @Test func aTrialSpecKnobCannotRunIsRefusedEverywhereAlike() async throws {
        let home = makeTemporaryDirectory()
        try write(workflowSpec, to: "\(home)/spec.yaml")
        let problem = "spec.trialTemplate.successCondition: successCondition and failureCondition are required for argoproj.io/v1alpha1 Workflow trials"

        let table = try await knob(["validate", "-f", "\(home)/spec.yaml"])
        #expect(table.status == 1 && table.stderr.contains(problem), "\(table.stderr)")
        let asJSON = try await knob(["validate", "-f", "\(home)/spec.yaml", "-o", "json"])
        #expect(asJSON.status == 1)
        let result = try #require(try json(asJSON.stdout) as? [String: Any])
        #expect(result["valid"] as? Bool == false)
        let listed = (result["problems"] as? [[String: Any]])?.map { "\($0["path"] ?? ""): \($0["message"] ?? "")" } ?? []
        #expect(listed.count == 2 && listed.contains { $0.hasPrefix(problem) }
                && listed.contains { $0.hasPrefix("spec.trialTemplate.primaryContainerName: is required") }, "\(listed)")

        // knob run stores nothing.
        let run = try await knob(["run", "-f", "\(home)/spec.yaml", "--home", "\(home)/run-home"])
        #expect(run.status != 0 && run.stderr.contains(problem), "\(run.stderr)")
        #expect(try await knob(["list", "--home", "\(home)/run-home", "-o", "json"]).stdout.contains("workflow") == false)

        // knobd answers 422 with the same problem, and creates nothing.
        let daemon = try await DaemonProcess.start(home: "\(home)/daemon")
        defer { kill(daemon.pid, SIGTERM) }
        let (code, text) = await answer(daemon.client, "POST", "/v1/experiments?directory=\(home)", body: Data(workflowSpec.utf8))
        #expect(code == 422, "\(text)")
        #expect(text.contains("successCondition and failureCondition are required for argoproj.io/v1alpha1 Workflow trials"), "\(text)")
        let list = try await daemon.client.request("GET", "/v1/experiments")
        #expect(!list.text.contains("workflow"))
    }
}

/// The status and text (or error code and message) the API answers.
func answer(_ client: KnobClient, _ method: String, _ path: String, body: Data? = nil) async -> (Int, String) {
    do {
        let response = try await client.request(method, path, body: body, contentType: "application/yaml")
        return (response.status, response.text)
    } catch KnobClient.ClientError.api(let status, let code, let message) {
        return (status, "\(code): \(message)")
    } catch {
        return (-1, "\(error)")
    }
}
