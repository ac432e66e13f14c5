import Foundation
import Hummingbird
import HummingbirdTesting
import Knob
import Logging
import Store
import Testing
@testable import KnobServer

/// The read routes keep their answers while the store is unchanged: what any connection commits
/// (this process's or another's, as `knob run` on the same home) shows in the next answer.
@Suite struct ReadCacheTests {
    func body(_ response: TestResponse) -> String {
        String(decoding: response.body.readableBytesView, as: UTF8.self)
    }

    func bestTrialName(_ text: String) throws -> String? {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        return (object["currentOptimalTrial"] as? [String: Any])?["bestTrialName"] as? String
    }

    func get(_ client: some TestClientProtocol, _ uri: String) async throws -> (body: String, next: String?) {
        try await client.execute(uri: uri, method: .get) { response in
            #expect(response.status == .ok, "\(uri)")
            return (body(response), response.headers[Page.continueHeader])
        }
    }

    @Test func aCommitByAnotherConnectionShowsInTheNextAnswer() async throws {
        let (api, home, _) = try APITests().makeAPI()
        // 25 trials, every third Succeeded with objective = its number (maximized), the others Pending.
        try await PaginationTests().seed(api.store, "kept", trials: 25, in: home.path)
        // Another connection to the same file, as another process has.
        let other = try Store(path: try #require(api.store.path))
        let app = Application(router: makeRouter(api, logger: Logger(label: "test"), token: nil))
        try await app.test(.router) { client in
            let first = try await get(client, "/v1/experiments/kept/optimal")
            #expect(try bestTrialName(first.body) == "kept-24")
            let page = try await get(client, "/v1/experiments/kept/trials?state=Succeeded&limit=3")
            let list = try await get(client, "/v1/experiments")
            #expect(api.cache.count == 3, "the answers are kept")
            // Unchanged store: the same answers, from what was kept.
            #expect(try await get(client, "/v1/experiments/kept/optimal").body == first.body)
            #expect(try await get(client, "/v1/experiments/kept/trials?state=Succeeded&limit=3") == page)
            #expect(try await get(client, "/v1/experiments").body == list.body)

            let kept = try await other.requireExperiment("kept")
            let pending = try #require(try await other.trials(of: kept.id!).first { $0.sequence == 25 })
            try await other.finishTrial(pending.id!, TrialEnd(state: .succeeded, reason: "Done", message: "done", exitCode: 0,
                                                              objectiveValue: 100))
            #expect(try bestTrialName(try await get(client, "/v1/experiments/kept/optimal").body) == "kept-25")
            let after = try await get(client, "/v1/experiments")
            #expect(after.body != list.body && after.body.contains(#""Succeeded":9"#), "\(after.body)")
            let nextPage = try await get(client, "/v1/experiments/kept/trials?state=Succeeded&continue=21")
            #expect(nextPage.body.contains(#""name":"kept-24""#) && nextPage.body.contains(#""name":"kept-25""#))

            // This process's own writes, through the API's store, count too.
            let third = try #require(try await api.store.trials(of: kept.id!).first { $0.sequence == 1 })
            try await api.store.finishTrial(third.id!, TrialEnd(state: .succeeded, reason: "Done", message: "done", exitCode: 0,
                                                                objectiveValue: 1000))
            #expect(try bestTrialName(try await get(client, "/v1/experiments/kept/optimal").body) == "kept-1")

            // A deleted experiment is gone at once.
            try await other.deleteExperiment(named: "kept")
            try await client.execute(uri: "/v1/experiments/kept/optimal", method: .get) { response in
                #expect(response.status == .notFound)
            }
            #expect(try await get(client, "/v1/experiments").body == "[]")
        }
    }

    @Test func keptAnswersAreTheBytesTheStoreWouldGiveAndDrivenIsLookedAtEachTime() async throws {
        let (api, home, _) = try APITests().makeAPI()
        for name in ["one", "two", "three"] { try await PaginationTests().seed(api.store, name, trials: 7, in: home.path) }
        let app = Application(router: makeRouter(api, logger: Logger(label: "test"), token: nil))
        try await app.test(.router) { client in
            func fresh() async throws -> String {
                var views: [ExperimentView] = []
                for experiment in try await api.store.experiments() { views.append(try await ExperimentView.load(experiment, store: api.store)) }
                return String(decoding: try APIJSON.encoder.encode(views), as: UTF8.self)
            }
            let expected = try await fresh()
            #expect(expected.contains(#""driven":false"#))
            #expect(try await get(client, "/v1/experiments").body == expected)
            #expect(try await get(client, "/v1/experiments").body == expected, "kept")
            let optimal = try await get(client, "/v1/experiments/two/optimal").body
            let two = try await api.store.requireExperiment("two")
            let best = OptimalTrial(try await api.store.optimalTrial(of: two))
            #expect(optimal == String(decoding: try APIJSON.encoder.encode(["currentOptimalTrial": best]), as: UTF8.self))
            let trials = try await get(client, "/v1/experiments/two/trials?limit=4")
            #expect(trials.next == "4")
            let page = try await api.store.trials(of: two.id!, limit: 4).trials
            #expect(trials.body == String(decoding: try APIJSON.encoder.encode(page), as: UTF8.self))

            // A controller taking an experiment is a lock, not a commit: it shows without one.
            let lock = try FileLock.experiment("two", home: home)
            let driven = try await get(client, "/v1/experiments").body
            #expect(driven == (try await fresh()) && driven != expected)
            #expect(driven.contains(#""driven":true"#))
            lock.release()
            #expect(try await get(client, "/v1/experiments").body == expected)
            // Pages of the list are kept apart from the whole list.
            let newest = try await get(client, "/v1/experiments?limit=1")
            #expect(newest.next != nil && newest.body.contains(#""name":"three""#) && !newest.body.contains(#""name":"two""#))
        }
    }

    @Test func anInMemoryStoreKeepsNothing() async throws {
        let store = try Store()
        let home = KnobHome(FileManager.default.temporaryDirectory.appendingPathComponent("knob-cache-\(UUID().uuidString)").path)
        let api = API(store: store, home: home, manager: ExperimentManager(store: store, home: home, runners: RunnerSet([LocalRunner()]),
                                                                           logger: Logger(label: "test")))
        try await PaginationTests().seed(store, "memory", trials: 3, in: home.path)
        let app = Application(router: makeRouter(api, logger: Logger(label: "test"), token: nil))
        try await app.test(.router) { client in
            let optimal = try await get(client, "/v1/experiments/memory/optimal").body
            #expect(try bestTrialName(optimal) == "memory-3")
            let list = try await get(client, "/v1/experiments").body
            #expect(api.cache.count == 0)
            // The view of an in-memory store says nothing of a controller.
            #expect(list.contains(#""name":"memory""#) && !list.contains("driven"))
        }
    }
}
