import Foundation
import Hummingbird
import HummingbirdTesting
import Knob
import Logging
import Testing
@testable import KnobServer

/// What the API takes from a client, checked without a daemon: budget edits, methods, the bearer scheme.
@Suite struct APIInputTests {
    func edit(_ json: String, maxParallel: Int = 64) -> Result<BudgetEdit, APIError> {
        var limits = SpecLimits.default
        limits.maxParallelTrialCount = maxParallel
        return Result { () throws(APIError) in try BudgetEdit(json: Data(json.utf8), limits: limits) }
    }

    @Test func aBudgetEditTakesJSONIntegersWithinTheLimits() throws {
        #expect(try edit(#"{"maxTrialCount": 20, "parallelTrialCount": 4, "maxFailedTrialCount": 0}"#).get()
            == BudgetEdit(maxTrialCount: 20, parallelTrialCount: 4, maxFailedTrialCount: 0))
        #expect(try edit(#"{"parallelTrialCount": 8}"#, maxParallel: 8).get() == BudgetEdit(parallelTrialCount: 8))
        #expect(try edit(#"{"parallelTrialCount": 2.0}"#).get() == BudgetEdit(parallelTrialCount: 2), "2.0 is the integer 2 in JSON")
        #expect(try edit("{}").get() == BudgetEdit())
    }

    @Test(arguments: [
        (#"{"parallelTrialCount": true}"#, "the boolean true"),
        (#"{"parallelTrialCount": "0x10"}"#, #"the string "0x10""#),
        (#"{"maxTrialCount": "16"}"#, #"the string "16""#),
        (#"{"maxTrialCount": 1.5}"#, "1.5"),
        (#"{"maxFailedTrialCount": null}"#, "null"),
        (#"{"parallelTrialCount": [4]}"#, "a list"),
        (#"{"parallelTrialCount": {"n": 4}}"#, "an object"),
    ])
    func anythingButAnIntegerIsABadRequestThatNamesTheField(json: String, found: String) throws {
        guard case .failure(let error) = edit(json) else { Issue.record("\(json) was accepted"); return }
        #expect(error.status == .badRequest)
        let field = try #require(BudgetEdit.fields.first { json.contains($0) })
        #expect(error.message == "\(field) must be a whole number (a JSON integer such as 4), not \(found)")
    }

    @Test func valuesOverALimitAre422AndNameTheLimit() {
        for (json, words) in [(#"{"parallelTrialCount": 100000}"#, ["at most 64", "--max-parallel"]),
                              (#"{"parallelTrialCount": 9}"#, ["at most 8", "--max-parallel"]),
                              (#"{"maxTrialCount": 1000001}"#, ["at most 1000000"]),
                              (#"{"maxFailedTrialCount": 1e300}"#, ["at most 1000000"]),
                              (#"{"maxTrialCount": 1e999}"#, ["at most 1000000", "too large"]),
                              (#"{"maxTrialCount": 0}"#, ["at least 1"]),
                              (#"{"maxFailedTrialCount": -1}"#, ["at least 0"])] {
            guard case .failure(let error) = edit(json, maxParallel: json.contains(": 9}") ? 8 : 64) else {
                Issue.record("\(json) was accepted"); continue
            }
            #expect(error.status == .unprocessableContent, "\(json)")
            for word in words { #expect(error.message.contains(word), "\(json): \(error.message)") }
        }
    }

    @Test func aBodyThatIsNoObjectOrHasAnUnknownFieldIsABadRequest() {
        for json in ["", "[1]", "4", "{", #"{"parallelTrialCount": 0x10}"#, #"{"maxTrials": 3}"#] {
            guard case .failure(let error) = edit(json) else { Issue.record("\(json) was accepted"); continue }
            #expect(error.status == .badRequest, "\(json)")
            #expect(!error.message.contains("Decoding"), "\(error.message)")
        }
    }

    @Test func theBearerSchemeIsReadInAnyCase() {
        for header in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR   abc"] {
            #expect(BearerTokenMiddleware<BasicRequestContext>.bearerCredentials(header) == "abc", "\(header)")
        }
        for header in ["", "Bearer", "Bearerabc", "Basic abc", "abc", "Bearer\tabc"] {
            #expect(BearerTokenMiddleware<BasicRequestContext>.bearerCredentials(header) == nil, "\(header)")
        }
    }

    @Test func aPathAskedWithAMethodItIsNotServedWithGets405AndAllow() async throws {
        let (api, _, _) = try APITests().makeAPI()
        let app = Application(router: makeRouter(api, logger: Logger(label: "test"), token: nil))
        try await app.test(.router) { client in
            for (method, path, allow) in [(HTTPRequest.Method.trace, "/v1/experiments", "GET, POST"),
                                          (.put, "/v1/experiments/x", "DELETE, GET, PATCH"),
                                          (.options, "/v1/experiments/x/trials/x-1", "GET"),
                                          (.head, "/healthz", "GET")] {
                try await client.execute(uri: path, method: method) { response in
                    #expect(response.status == .methodNotAllowed, "\(method) \(path)")
                    #expect(response.headers[.allow] == allow, "\(method) \(path)")
                    #expect(String(buffer: response.body).contains("MethodNotAllowed") || method == .head)
                }
            }
            for (method, path) in [(HTTPRequest.Method.trace, "/nowhere"), (.get, "/v1/experiments/x/y/z/w/v"), (.get, "/v1")] {
                try await client.execute(uri: path, method: method) { response in
                    #expect(response.status == .notFound, "\(method) \(path)")
                }
            }
        }
    }
}
