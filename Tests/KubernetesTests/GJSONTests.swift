import Foundation
import Testing
@testable import Knob

/// JSON text as JSONSerialization reads it (the form the Kubernetes API's answers take in knob).
func parseJSON(_ text: String) -> Any {
    try! JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed)
}

/// A result as compact JSON text with sorted keys, or `<none>` when it does not exist.
private func render(_ value: Any?) -> String {
    guard let value else { return "<none>" }
    let data = try! JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self)
}

// MARK: Trial objects as the Kubernetes API returns them

enum TrialObjects {
    static let jobRunning = """
        {"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"mnist-3","namespace":"default"},
         "status":{"active":1,"ready":1,"startTime":"2026-11-30T12:00:00Z","terminating":0,"uncountedTerminatedPods":{}}}
        """
    static let jobComplete = """
        {"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"mnist-3","namespace":"default","creationTimestamp":"2026-11-30T12:00:00Z"},
         "status":{"conditions":[
            {"type":"SuccessCriteriaMet","status":"True","reason":"CompletionsReached","message":"Reached expected number of succeeded pods",
             "lastProbeTime":"2026-11-30T12:05:00Z","lastTransitionTime":"2026-11-30T12:05:00Z"},
            {"type":"Complete","status":"True","reason":"CompletionsReached","message":"Reached expected number of succeeded pods",
             "lastProbeTime":"2026-11-30T12:05:00Z","lastTransitionTime":"2026-11-30T12:05:00Z"}],
          "succeeded":1,"ready":0,"startTime":"2026-11-30T12:00:00Z","completionTime":"2026-11-30T12:05:00Z"}}
        """
    static func jobFailed(reason: String, message: String) -> String {
        """
        {"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"mnist-3","namespace":"default","creationTimestamp":"2026-11-30T12:00:00Z"},
         "status":{"conditions":[
            {"type":"FailureTarget","status":"True","reason":"\(reason)","message":"\(message)","lastProbeTime":"2026-11-30T12:05:00Z"},
            {"type":"Failed","status":"True","reason":"\(reason)","message":"\(message)","lastProbeTime":"2026-11-30T12:05:00Z"}],
          "failed":1,"ready":0,"startTime":"2026-11-30T12:00:00Z"}}
        """
    }
    /// A Job whose condition of type Complete is there but not True (no such Job exists today, but the path must look at `status`).
    static let jobCompleteFalse = """
        {"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"mnist-3","namespace":"default"},
         "status":{"conditions":[{"type":"Complete","status":"False"},{"type":"Suspended","status":"False"}],"active":1}}
        """

    static func pyTorchJob(_ conditions: String) -> String {
        """
        {"apiVersion":"kubeflow.org/v1","kind":"PyTorchJob","metadata":{"name":"mnist-3","namespace":"default","creationTimestamp":"2026-11-30T12:00:00Z"},
         "spec":{"pytorchReplicaSpecs":{"Master":{"replicas":1,"restartPolicy":"OnFailure"}}},
         "status":{"conditions":[\(conditions)],"replicaStatuses":{"Master":{"active":1}},"startTime":"2026-11-30T12:00:01Z"}}
        """
    }
    static let pyTorchCreated = """
        {"type":"Created","status":"True","reason":"PyTorchJobCreated","message":"PyTorchJob default/mnist-3 is created.",
         "lastUpdateTime":"2026-11-30T12:00:00Z","lastTransitionTime":"2026-11-30T12:00:00Z"}
        """
    static let pyTorchRunning = pyTorchJob(pyTorchCreated + """
        ,{"type":"Running","status":"True","reason":"PyTorchJobRunning","message":"PyTorchJob default/mnist-3 is running.",
          "lastUpdateTime":"2026-11-30T12:00:05Z","lastTransitionTime":"2026-11-30T12:00:05Z"}
        """)
    static let pyTorchSucceeded = pyTorchJob(pyTorchCreated + """
        ,{"type":"Running","status":"False","reason":"PyTorchJobRunning","message":"PyTorchJob default/mnist-3 is running.",
          "lastUpdateTime":"2026-11-30T12:04:00Z","lastTransitionTime":"2026-11-30T12:04:00Z"},
         {"type":"Succeeded","status":"True","reason":"PyTorchJobSucceeded","message":"PyTorchJob default/mnist-3 successfully completed.",
          "lastUpdateTime":"2026-11-30T12:04:00Z","lastTransitionTime":"2026-11-30T12:04:00Z"}
        """)
    static let pyTorchFailed = pyTorchJob(pyTorchCreated + """
        ,{"type":"Running","status":"False","reason":"PyTorchJobRunning","message":"PyTorchJob default/mnist-3 is running.",
          "lastUpdateTime":"2026-11-30T12:04:00Z","lastTransitionTime":"2026-11-30T12:04:00Z"},
         {"type":"Failed","status":"True","reason":"PyTorchJobFailed","message":"PyTorchJob default/mnist-3 is failed because 1 Master replica(s) failed.",
          "lastUpdateTime":"2026-11-30T12:04:00Z","lastTransitionTime":"2026-11-30T12:04:00Z"}
        """)

    static func workflow(phase: String, message: String? = nil) -> String {
        """
        {"apiVersion":"argoproj.io/v1alpha1","kind":"Workflow","metadata":{"name":"mnist-3","namespace":"default"},
         "status":{"phase":"\(phase)",\(message.map { "\"message\":\"\($0)\"," } ?? "")"startedAt":"2026-11-30T12:00:00Z",
          "progress":"1/2","nodes":{"mnist-3":{"id":"mnist-3","name":"mnist-3","phase":"\(phase)","type":"Steps"}}}}
        """
    }

    static func pipelineRun(status: String, reason: String, message: String) -> String {
        """
        {"apiVersion":"tekton.dev/v1","kind":"PipelineRun","metadata":{"name":"mnist-3","namespace":"default"},
         "status":{"conditions":[{"type":"Succeeded","status":"\(status)","reason":"\(reason)","message":"\(message)",
            "lastTransitionTime":"2026-11-30T12:04:00Z"}],"startTime":"2026-11-30T12:00:00Z",
          "childReferences":[{"kind":"TaskRun","name":"mnist-3-train","pipelineTaskName":"train"}]}}
        """
    }
    static let pipelineRunning = pipelineRun(status: "Unknown", reason: "Running", message: "Tasks Completed: 0 (Failed: 0, Cancelled 0), Incomplete: 1, Skipped: 0")
    static let pipelineSucceeded = pipelineRun(status: "True", reason: "Succeeded", message: "Tasks Completed: 1 (Failed: 0, Cancelled 0), Skipped: 0")
    static let pipelineFailed = pipelineRun(status: "False", reason: "Failed", message: "Tasks Completed: 1 (Failed: 1, Cancelled 0), Skipped: 0")
}

/// Katib's defaults (experiment_defaults.go) and the conditions of its examples.
enum KatibConditions {
    static let jobSuccess = #"status.conditions.#(type=="Complete")#|#(status=="True")#"#
    static let jobFailure = #"status.conditions.#(type=="Failed")#|#(status=="True")#"#
    static let kubeflowSuccess = #"status.conditions.#(type=="Succeeded")#|#(status=="True")#"#
    static let kubeflowFailure = #"status.conditions.#(type=="Failed")#|#(status=="True")#"#
    static let argoSuccess = #"status.[@this].#(phase=="Succeeded")#"#
    static let argoFailure = #"status.[@this].#(phase=="Failed")#"#
    static let tektonSuccess = #"status.conditions.#(type=="Succeeded")#|#(status=="True")#"#
    static let tektonFailure = #"status.conditions.#(type=="Succeeded")#|#(status=="False")#"#
}

struct ConditionCase: Sendable, CustomTestStringConvertible {
    var condition: String
    var object: String
    var objectName: String
    var met: Bool
    var testDescription: String { "\(met ? "met" : "not met"): \(condition) on \(objectName)" }
}

private let conditionCases: [ConditionCase] = {
    typealias C = KatibConditions
    typealias O = TrialObjects
    let backoff = O.jobFailed(reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit")
    let deadline = O.jobFailed(reason: "DeadlineExceeded", message: "Job was active longer than specified deadline")
    return [
        ConditionCase(condition: C.jobSuccess, object: O.jobComplete, objectName: "a complete Job", met: true),
        ConditionCase(condition: C.jobFailure, object: O.jobComplete, objectName: "a complete Job", met: false),
        ConditionCase(condition: C.jobSuccess, object: O.jobRunning, objectName: "a running Job", met: false),
        ConditionCase(condition: C.jobFailure, object: O.jobRunning, objectName: "a running Job", met: false),
        ConditionCase(condition: C.jobSuccess, object: O.jobCompleteFalse, objectName: "a Job with Complete False", met: false),
        ConditionCase(condition: C.jobSuccess, object: backoff, objectName: "a Job past its backoff limit", met: false),
        ConditionCase(condition: C.jobFailure, object: backoff, objectName: "a Job past its backoff limit", met: true),
        ConditionCase(condition: C.jobFailure, object: deadline, objectName: "a Job past its deadline", met: true),
        ConditionCase(condition: C.kubeflowSuccess, object: O.pyTorchSucceeded, objectName: "a succeeded PyTorchJob", met: true),
        ConditionCase(condition: C.kubeflowFailure, object: O.pyTorchSucceeded, objectName: "a succeeded PyTorchJob", met: false),
        ConditionCase(condition: C.kubeflowSuccess, object: O.pyTorchRunning, objectName: "a running PyTorchJob", met: false),
        ConditionCase(condition: C.kubeflowFailure, object: O.pyTorchRunning, objectName: "a running PyTorchJob", met: false),
        ConditionCase(condition: C.kubeflowSuccess, object: O.pyTorchFailed, objectName: "a failed PyTorchJob", met: false),
        ConditionCase(condition: C.kubeflowFailure, object: O.pyTorchFailed, objectName: "a failed PyTorchJob", met: true),
        ConditionCase(condition: C.argoSuccess, object: O.workflow(phase: "Succeeded"), objectName: "a succeeded Workflow", met: true),
        ConditionCase(condition: C.argoFailure, object: O.workflow(phase: "Succeeded"), objectName: "a succeeded Workflow", met: false),
        ConditionCase(condition: C.argoSuccess, object: O.workflow(phase: "Running"), objectName: "a running Workflow", met: false),
        ConditionCase(condition: C.argoFailure, object: O.workflow(phase: "Running"), objectName: "a running Workflow", met: false),
        ConditionCase(condition: C.argoSuccess, object: O.workflow(phase: "Failed", message: "child 'mnist-3-1' failed"), objectName: "a failed Workflow",
                      met: false),
        ConditionCase(condition: C.argoFailure, object: O.workflow(phase: "Failed", message: "child 'mnist-3-1' failed"), objectName: "a failed Workflow",
                      met: true),
        ConditionCase(condition: C.tektonSuccess, object: O.pipelineSucceeded, objectName: "a succeeded PipelineRun", met: true),
        ConditionCase(condition: C.tektonFailure, object: O.pipelineSucceeded, objectName: "a succeeded PipelineRun", met: false),
        ConditionCase(condition: C.tektonSuccess, object: O.pipelineRunning, objectName: "a running PipelineRun", met: false),
        ConditionCase(condition: C.tektonFailure, object: O.pipelineRunning, objectName: "a running PipelineRun", met: false),
        ConditionCase(condition: C.tektonSuccess, object: O.pipelineFailed, objectName: "a failed PipelineRun", met: false),
        ConditionCase(condition: C.tektonFailure, object: O.pipelineFailed, objectName: "a failed PipelineRun", met: true),
        // A Workflow with no status yet: `status` does not exist, nor anything after it.
        ConditionCase(condition: C.argoSuccess, object: #"{"kind":"Workflow","metadata":{"name":"w"}}"#, objectName: "a new Workflow", met: false),
        // Katib counts an object or a non-empty array only: a bare string found is not a met condition.
        ConditionCase(condition: "status.phase", object: O.workflow(phase: "Succeeded"), objectName: "a succeeded Workflow", met: false),
        ConditionCase(condition: "status", object: O.workflow(phase: "Succeeded"), objectName: "a succeeded Workflow", met: true),
    ]
}()

/// GJSON's syntax document's example.
private let people = """
    {
      "name": {"first": "Tom", "last": "Anderson"},
      "age":37,
      "children": ["Sara","Alex","Jack"],
      "fav.movie": "Deer Hunter",
      "friends": [
        {"first": "Dale", "last": "Murphy", "age": 44, "nets": ["ig", "fb", "tw"]},
        {"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]},
        {"first": "Jane", "last": "Murphy", "age": 47, "nets": ["ig", "tw"]}
      ],
      "vals": [{"a": 1, "b": true}, {"a": 2, "b": false}, {"a": 3, "b": "true"}, {"a": 4, "b": null}, {"a": 5}]
    }
    """

private let dale = #"{"age":44,"first":"Dale","last":"Murphy","nets":["ig","fb","tw"]}"#

/// (path, its result in `people` as JSON text).
private let semanticsCases: [(String, String)] = [
    // Keys, indexes, escapes.
    ("name.last", #""Anderson""#),
    ("age", "37"),
    ("children", #"["Sara","Alex","Jack"]"#),
    ("children.1", #""Alex""#),
    ("children.3", "<none>"),
    ("friends.1.first", #""Roger""#),
    ("name.0", "<none>"),
    (#"fav\.movie"#, #""Deer Hunter""#),
    ("fav.movie", "<none>"),
    ("nobody.first", "<none>"),
    // `#`: a length at the end, each item before `.rest`.
    ("friends.#", "3"),
    ("friends.#.age", "[44,68,47]"),
    ("friends.#.nets.#", "[3,2,2]"),
    ("friends.#.middle", "[]"),
    ("name.#", "<none>"),
    // The first match, all matches.
    (#"friends.#(last=="Murphy").first"#, #""Dale""#),
    (#"friends.#(last=="Murphy")#.first"#, #"["Dale","Jane"]"#),
    (#"friends.#(last=="Nobody").first"#, "<none>"),
    (#"friends.#(last=="Nobody")#"#, "[]"),
    (#"friends.#(last=="Nobody")#.first"#, "[]"),
    (#"friends.#(last="Murphy").first"#, #""Dale""#),
    (#"friends.#( last == "Murphy" ).first"#, #""Dale""#),
    ("friends.#(age>45)#.last", #"["Craig","Murphy"]"#),
    ("friends.#(age>=47)#.first", #"["Roger","Jane"]"#),
    ("friends.#(age<47).first", #""Dale""#),
    ("friends.#(age<=47)#.first", #"["Dale","Jane"]"#),
    ("friends.#(age!=68)#.first", #"["Dale","Jane"]"#),
    ("friends.#(age==44.0).first", #""Dale""#),
    (#"friends.#(last<"D")#.first"#, #"["Roger"]"#),
    (#"friends.#(first>="Jane")#.first"#, #"["Roger","Jane"]"#),
    (#"friends.#(first%"D*").last"#, #""Murphy""#),
    (#"friends.#(first!%"D*").last"#, #""Craig""#),
    (#"friends.#(first%"?a?e")#.first"#, #"["Dale","Jane"]"#),
    (#"children.#(!%"*a*")"#, #""Alex""#),
    (#"children.#(%"*a*")#"#, #"["Sara","Jack"]"#),
    (#"children.#(=="Jack")"#, #""Jack""#),
    ("friends.#(nets.#(==\"fb\"))#.first", #"["Dale","Roger"]"#),
    ("friends.#(first)#.age", "[44,68,47]"),
    ("friends.#(middle)#", "[]"),
    // A query on something not an array finds nothing.
    (#"name.#(first=="Tom")"#, "<none>"),
    // Booleans compare with true and false (a string compares as text); null matches no operator, but exists.
    ("vals.#(b==true)#.a", "[1,3]"),
    ("vals.#(b==false)#.a", "[2]"),
    ("vals.#(b!=true)#.a", "[2]"),
    ("vals.#(b==null)#.a", "[]"),
    ("vals.#(b)#.a", "[1,2,3,4]"),
    // Queries chained with `|`, and `.` vs `|` after them.
    (#"friends.#(last=="Murphy")#|#(age>45)#.first"#, #"["Jane"]"#),
    (#"friends.#(last=="Murphy")#|#(age>50)#"#, "[]"),
    (#"friends.#(last=="Murphy")#|first"#, "<none>"),
    (#"friends.#(last=="Murphy")#.0"#, "[]"),
    (#"friends.#(last=="Murphy")#|0"#, dale),
    (#"friends.#(last=="Murphy")#.#"#, "[]"),
    (#"friends.#(last=="Murphy")#|#"#, "2"),
    ("friends|0.first", #""Dale""#),
    ("friends.0|first", #""Dale""#),
    ("friends|#", "3"),
    ("friends.#.nets|0", #"["ig","fb","tw"]"#),
    ("friends.#.nets.0", #"["ig","fb","ig"]"#),
    // `@this` and multipaths.
    ("@this.age", "37"),
    ("name.@this.first", #""Tom""#),
    ("[name.first,age]", #"["Tom",37]"#),
    ("[name.first,nobody,age]", #"["Tom",37]"#),
    ("[name.first,age].#", "2"),
    ("[name.first,age]|1", "37"),
    ("name.[@this].#(first==\"Tom\")#.last", #"["Anderson"]"#),
    ("name.[@this].#(first==\"Bob\")#", "[]"),
]

/// (path, position, a word the message has).
private let parseErrorCases: [(String, Int, String)] = [
    ("", 1, "empty"),
    ("..name", 1, "JSON lines"),
    ("children.@reverse", 10, "@reverse"),
    ("friends.{first,age}", 9, "{...}"),
    ("child*.2", 6, "wildcard"),
    ("c?ildren.0", 2, "wildcard"),
    (#"friends.#(last=="Murphy""#, 9, "never closed"),
    (#"friends.#[last=="Murphy"]"#, 9, "#(...)"),
    ("friends.#(age!45)", 14, "operator"),
    ("friends.#(b==~true)", 14, "~"),
    ("friends.#(na*me==1)", 13, "wildcard"),
    (#"friends.#(last=="Murphy")x"#, 26, "expected '.' or '|'"),
    ("name..first", 6, "empty key"),
    ("name.", 6, "ends with '.'"),
    ("friends|", 9, "ends with '|'"),
    ("[@this", 1, "never closed"),
    ("!true", 1, "literals"),
    ("friends.#()", 9, "empty"),
    (#"friends.#(last=="Mur)"#, 17, "never closed"),
]

@Suite struct GJSONTests {
    @Test(arguments: conditionCases)
    func katibsConditions(_ example: ConditionCase) throws {
        let path = try GJSONPath.parse(example.condition)
        #expect(path.holds(in: parseJSON(example.object)) == example.met)
    }

    @Test(arguments: semanticsCases)
    func semantics(_ path: String, _ expected: String) throws {
        #expect(render(try GJSONPath.parse(path).evaluate(parseJSON(people))) == expected)
    }

    @Test(arguments: parseErrorCases)
    func parseErrorsSayWhereAndWhat(_ path: String, _ position: Int, _ word: String) {
        let error = #expect(throws: GJSONError.self) { try GJSONPath.parse(path) }
        #expect(error?.position == position)
        #expect(error?.reason.contains(word) == true, "\(error?.reason ?? "no error")")
    }

    @Test func aQueryFindsTheFirstMatchAndAllMatchesAnArray() throws {
        let conditions = parseJSON(TrialObjects.pyTorchSucceeded)
        // The first: a condition object; all: an array of them.
        let first = try #require(GJSONPath.parse(#"status.conditions.#(status=="True")"#).evaluate(conditions) as? [String: Any])
        #expect(first["type"] as? String == "Created")
        let all = try #require(GJSONPath.parse(#"status.conditions.#(status=="True")#"#).evaluate(conditions) as? [Any])
        #expect(all.compactMap { ($0 as? [String: Any])?["type"] as? String } == ["Created", "Succeeded"])
        // `.type` after all matches maps over them; after the first, reads it.
        #expect(render(try GJSONPath.parse(#"status.conditions.#(status=="True")#.type"#).evaluate(conditions)) == #"["Created","Succeeded"]"#)
        #expect(render(try GJSONPath.parse(#"status.conditions.#(status=="True").type"#).evaluate(conditions)) == #""Created""#)
    }

    @Test func holdsMeansAnObjectOrANonEmptyArray() throws {
        let json = parseJSON(#"{"o":{},"a":[],"b":[null],"s":"x","n":0,"t":true,"z":null}"#)
        let held = try ["o", "a", "b", "s", "n", "t", "z", "missing", "missing.[@this]", "a.#(x==1)#"].filter { try GJSONPath.parse($0).holds(in: json) }
        #expect(held == ["o", "b"])
    }

    @Test func theErrorSaysWhereInItsDescription() {
        #expect(throws: GJSONError(position: 10, reason: "the modifier '@reverse' is not supported (only @this is)")) {
            try GJSONPath.parse("children.@reverse")
        }
        let error = GJSONError(position: 10, reason: "x")
        #expect(error.description == "at character 10: x")
    }
}

/// A path nested past what any condition needs is refused, not followed until the stack runs out.
@Suite struct GJSONNestingTests {
    func queries(_ depth: Int) -> String { String(repeating: "a.#(", count: depth) + "b==1" + String(repeating: ")", count: depth) }
    func multipaths(_ depth: Int) -> String { String(repeating: "[", count: depth) + "a" + String(repeating: "]", count: depth) }

    @Test func sixteenLevelsParseAndMoreAreRefused() throws {
        _ = try GJSONPath.parse(queries(GJSONParser.maxDepth))
        _ = try GJSONPath.parse(multipaths(GJSONParser.maxDepth))
        for text in [queries(GJSONParser.maxDepth + 1), multipaths(GJSONParser.maxDepth + 1), queries(100_000), multipaths(100_000)] {
            #expect(throws: GJSONError.self) { try GJSONPath.parse(text) }
            do {
                _ = try GJSONPath.parse(text)
            } catch {
                #expect(error.reason == "queries and multipaths are nested more than 16 deep" && error.position > 1)
            }
        }
    }
}
