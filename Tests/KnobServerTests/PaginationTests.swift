import Foundation
import Hummingbird
import HummingbirdTesting
import Knob
import Logging
import Store
import Testing
@testable import KnobServer

/// Lists in pages (`limit`, `continue` and the `Knob-Continue` header), and trials by state.
@Suite struct PaginationTests {
    static let spec = """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: NAME}
        spec:
          objective: {type: maximize, objectiveMetricName: accuracy}
          algorithm: {algorithmName: random}
          parameters:
            - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
          trialTemplate:
            command: [/bin/echo, "accuracy=${trialParameters.x}"]
        """

    /// An experiment `name` with `count` trials, every third Succeeded, the others Pending.
    func seed(_ store: Store, _ name: String, trials count: Int, in directory: String) async throws {
        let text = Self.spec.replacingOccurrences(of: "NAME", with: name)
        let experiment = try await store.createExperiment(try Engine.newRecord(specText: text, spec: try ExperimentSpec.parse(text), directory: directory))
        let trials = try await store.createTrials((0..<count).map { _ in NewTrial(assignments: [], suggesterMetadata: [:]) }, for: experiment)
        for trial in trials where trial.sequence % 3 == 0 {
            try await store.finishTrial(trial.id!, TrialEnd(state: .succeeded, reason: "Done", message: "done", exitCode: 0, observation: [],
                                                            objectiveValue: Double(trial.sequence)))
        }
    }

    func names(_ response: TestResponse) throws -> [String] {
        let items = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [[String: Any]])
        return items.compactMap { $0["name"] as? String }
    }

    @Test func trialsComeInPagesThatJoinUpToTheWholeList() async throws {
        let (api, home, _) = try APITests().makeAPI()
        try await seed(api.store, "paged", trials: 25, in: home.path)
        let app = Application(router: makeRouter(api, logger: Logger(label: "test"), token: nil))
        try await app.test(.router) { client in
            var seen: [String] = []
            var token: String? = ""
            var pages = 0
            while let next = token {
                try await client.execute(uri: "/v1/experiments/paged/trials?limit=10&continue=\(next)", method: .get) { response in
                    #expect(response.status == .ok)
                    seen += try names(response)
                    token = response.headers[Page.continueHeader]
                }
                pages += 1
            }
            #expect(pages == 3)
            #expect(seen == (1...25).map { "paged-\($0)" })
            try await client.execute(uri: "/v1/experiments/paged/trials?state=Succeeded&limit=5", method: .get) { response in
                let got = try self.names(response)
                #expect(got == [3, 6, 9, 12, 15].map { "paged-\($0)" })
                #expect(response.headers[Page.continueHeader] == "15")
            }
            try await client.execute(uri: "/v1/experiments/paged/trials?state=Succeeded&continue=15", method: .get) { response in
                let got = try self.names(response)
                #expect(got == [18, 21, 24].map { "paged-\($0)" })
                #expect(response.headers[Page.continueHeader] == nil)
            }
            try await client.execute(uri: "/v1/experiments/paged/trials", method: .get) { response in
                let got = try self.names(response)
                #expect(got.count == 25)
            }
            try await client.execute(uri: "/v1/experiments/paged/optimal", method: .get) { response in
                let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
                #expect((object["currentOptimalTrial"] as? [String: Any])?["bestTrialName"] as? String == "paged-24")
            }
        }
    }

    @Test func experimentsComeInPagesNewestFirst() async throws {
        let (api, home, _) = try APITests().makeAPI()
        for i in 1...5 { try await seed(api.store, "e\(i)", trials: 1, in: home.path) }
        let app = Application(router: makeRouter(api, logger: Logger(label: "test"), token: nil))
        try await app.test(.router) { client in
            var token = ""
            try await client.execute(uri: "/v1/experiments?limit=2", method: .get) { response in
                let got = try self.names(response)
                #expect(got == ["e5", "e4"])
                token = try #require(response.headers[Page.continueHeader])
            }
            try await client.execute(uri: "/v1/experiments?limit=2&continue=\(token)", method: .get) { response in
                let got = try self.names(response)
                #expect(got == ["e3", "e2"])
                token = try #require(response.headers[Page.continueHeader])
            }
            try await client.execute(uri: "/v1/experiments?limit=2&continue=\(token)", method: .get) { response in
                let got = try self.names(response)
                #expect(got == ["e1"])
                #expect(response.headers[Page.continueHeader] == nil)
            }
        }
    }

    @Test func badPagesAndStatesAreRefusedWithWhatToDo() async throws {
        let (api, home, _) = try APITests().makeAPI()
        try await seed(api.store, "bad", trials: 2, in: home.path)
        let app = Application(router: makeRouter(api, logger: Logger(label: "test"), token: nil))
        try await app.test(.router) { client in
            for (query, words) in [("limit=0", "limit must be"), ("limit=1001", "1 to 1000"), ("limit=ten", "limit must be"),
                                   ("continue=-3", "Knob-Continue"), ("continue=abc", "not a token"), ("state=Done", "Pending, Running")] {
                try await client.execute(uri: "/v1/experiments/bad/trials?\(query)", method: .get) { response in
                    #expect(response.status == .badRequest, "\(query)")
                    #expect(String(decoding: response.body.readableBytesView, as: UTF8.self).contains(words), "\(query)")
                }
            }
        }
    }
}

/// A budget edit that would end a running experiment and kill its trials is refused unless forced.
@Suite struct BudgetSafetyTests {
    @Test func aBudgetBelowWhatRanIsRefusedUnlessForced() async throws {
        let (api, home, _) = try APITests().makeAPI()
        // 9 trials: every third Succeeded, the rest Pending; and two of them failed.
        try await PaginationTests().seed(api.store, "busy", trials: 9, in: home.path)
        let experiment = try await api.store.requireExperiment("busy")
        try await api.store.markExperimentRunning(experiment.id!)
        for trial in try await api.store.trials(of: experiment.id!) where [1, 2].contains(trial.sequence) {
            try await api.store.finishTrial(trial.id!, TrialEnd(state: .failed, reason: "Error", message: "exited with code 1"))
        }
        let app = Application(router: makeRouter(api, logger: Logger(label: "test"), token: nil))
        try await app.test(.router) { client in
            for (body, words) in [(#"{"maxTrialCount": 5}"#, "already created 9 trials"), (#"{"maxFailedTrialCount": 1}"#, "already had 2 failed trials")] {
                try await client.execute(uri: "/v1/experiments/busy", method: .patch, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .conflict, "\(body)")
                    let text = String(decoding: response.body.readableBytesView, as: UTF8.self)
                    #expect(text.contains(words) && text.contains("kill its 4 unfinished trials") && text.contains("--force"), "\(text)")
                }
            }
            let unchanged = try await api.store.requireExperiment("busy").parsedSpec()
            #expect(unchanged.maxTrialCount == nil && unchanged.maxFailedTrialCount == nil)
            // At or above what ran is fine, and force applies the rest.
            try await client.execute(uri: "/v1/experiments/busy", method: .patch, body: ByteBuffer(string: #"{"maxTrialCount": 9, "maxFailedTrialCount": 3}"#)) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/v1/experiments/busy?force=true", method: .patch, body: ByteBuffer(string: #"{"maxTrialCount": 5}"#)) {
                #expect($0.status == .ok)
            }
            #expect(try await api.store.requireExperiment("busy").parsedSpec().maxTrialCount == 5)
        }
    }
}
