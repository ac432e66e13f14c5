import Foundation
import Knob
import Testing
@testable import Kubernetes

/// A trial's pod as the API lists it, created at 12:00 plus `createdAfter` seconds; `state` is the
/// primary container's state (`nil`: no container status yet).
private func pod(_ name: String = "mnist-3", createdAfter: Int = 0, phase: String, reason: String? = nil, message: String? = nil,
                 state: String?, lastState: String = "{}", deletionTimestamp: String? = nil, conditions: String = "[]") -> String {
    let created = ISO8601DateFormatter().string(from: start.addingTimeInterval(Double(createdAfter)))
    var metadata = #""name":"\#(name)","namespace":"default","creationTimestamp":"\#(created)","labels":{"knob.dev/trial":"mnist-3"}"#
    if let deletionTimestamp { metadata += #","deletionTimestamp":"\#(deletionTimestamp)","deletionGracePeriodSeconds":30"# }
    var status = #""phase":"\#(phase)","conditions":\#(conditions)"#
    if let reason { status += #","reason":"\#(reason)""# }
    if let message { status += #","message":"\#(message)""# }
    if let state {
        status += #","containerStatuses":[{"name":"training","image":"pytorch-mnist:1","ready":false,"restartCount":0,"#
            + #""state":\#(state),"lastState":\#(lastState)}]"#
    }
    return #"{"apiVersion":"v1","kind":"Pod","metadata":{\#(metadata)},"status":{\#(status)}}"#
}

private let start = Date(timeIntervalSince1970: 1_794_916_800)  // 2026-11-17T12:00:00Z

private func terminated(_ code: Int, _ reason: String) -> String {
    #"{"terminated":{"exitCode":\#(code),"reason":"\#(reason)","startedAt":"2026-11-17T12:00:05Z","finishedAt":"2026-11-17T12:04:00Z"}}"#
}

private func waiting(_ reason: String, _ message: String) -> String {
    #"{"waiting":{"reason":"\#(reason)","message":"\#(message)"}}"#
}

private let running = #"{"running":{"startedAt":"2026-11-17T12:00:05Z"}}"#
private let imagePull = waiting("ImagePullBackOff", #"Back-off pulling image \"pytorch-mnist:nope\""#)
private let imagePullDetail = #"ImagePullBackOff: Back-off pulling image "pytorch-mnist:nope""#
private let unschedulable = #"[{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":"0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]"#

private func job(_ status: String) -> String {
    #"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"mnist-3","namespace":"default","creationTimestamp":"2026-11-17T12:00:00Z"},"status":\#(status)}"#
}

private let jobFailedCondition = #"{"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit"}],"failed":2}"#
private let jobDeadlineCondition = #"{"conditions":[{"type":"Failed","status":"True","reason":"DeadlineExceeded","message":"Job was active longer than specified deadline"}],"failed":1}"#

struct OutcomeCase: Sendable, CustomTestStringConvertible {
    var name: String
    var kind: String
    var object: String? = nil
    var pods: [String]
    var success: String? = nil
    var failure: String? = nil
    /// Seconds since 12:00 (when the pods and objects were created); the pending timeout is 300 s.
    var now: Double = 60
    var terminating = false
    var deleted = false
    var deleteFailure: String? = nil
    var exit: TrialExit?
    var waiting: String? = nil
    var endedByObject = false

    var testDescription: String { "\(kind): \(name)" }
}

private let outcomeCases: [OutcomeCase] = [
    // A Pod: its primary container decides.
    OutcomeCase(name: "succeeded", kind: "Pod", pods: [pod(phase: "Succeeded", state: terminated(0, "Completed"))], exit: .exited(0)),
    OutcomeCase(name: "failed with an exit code", kind: "Pod", pods: [pod(phase: "Failed", state: terminated(3, "Error"))], exit: .exited(3)),
    OutcomeCase(name: "OOMKilled", kind: "Pod", pods: [pod(phase: "Failed", state: terminated(137, "OOMKilled"))],
                exit: .failed(reason: "OOMKilled", message: "container training of pod mnist-3 ran out of memory and was killed "
                              + "(OOMKilled, exit code 137); raise its resources.limits.memory", exitCode: 137)),
    OutcomeCase(name: "killed for another reason", kind: "Pod", pods: [pod(phase: "Failed", state: terminated(128, "ContainerCannotRun"))],
                exit: .failed(reason: "ContainerCannotRun", message: "container training of pod mnist-3 ended with ContainerCannotRun (exit code 128)",
                              exitCode: 128)),
    OutcomeCase(name: "evicted", kind: "Pod",
                pods: [pod(phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory.", state: terminated(137, "Error"))],
                exit: .failed(reason: "Evicted", message: "pod mnist-3 failed: The node was low on resource: memory.", exitCode: nil)),
    OutcomeCase(name: "restarted after a failure", kind: "Pod", pods: [pod(phase: "Running", state: running, lastState: terminated(1, "Error"))],
                exit: .exited(1)),
    OutcomeCase(name: "running", kind: "Pod", pods: [pod(phase: "Running", state: running)], exit: nil),
    OutcomeCase(name: "ImagePullBackOff before the pending timeout", kind: "Pod", pods: [pod(phase: "Pending", state: imagePull)], now: 299,
                exit: nil, waiting: imagePullDetail),
    OutcomeCase(name: "ImagePullBackOff past the pending timeout", kind: "Pod", pods: [pod(phase: "Pending", state: imagePull)], now: 301,
                exit: .failed(reason: "ImagePullBackOff", message: "pod mnist-3 did not start within 300s: \(imagePullDetail)", exitCode: nil),
                waiting: imagePullDetail),
    OutcomeCase(name: "an invalid image name at once", kind: "Pod",
                pods: [pod(phase: "Pending", state: waiting("InvalidImageName", "couldn't parse image name"))], now: 5,
                exit: .failed(reason: "InvalidImageName", message: "pod mnist-3 cannot start: InvalidImageName: couldn't parse image name", exitCode: nil)),
    OutcomeCase(name: "creating its container past the pending timeout, a routine wait", kind: "Pod",
                pods: [pod(phase: "Pending", state: #"{"waiting":{"reason":"ContainerCreating"}}"#)], now: 400,
                exit: .failed(reason: "ContainerCreating", message: "pod mnist-3 did not start within 300s: ContainerCreating", exitCode: nil)),
    OutcomeCase(name: "unschedulable", kind: "Pod", pods: [pod(phase: "Pending", state: nil, conditions: unschedulable)], now: 30,
                exit: nil, waiting: "Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."),
    OutcomeCase(name: "gone", kind: "Pod", pods: [],
                exit: .failed(reason: "Deleted", message: "pod default/mnist-3 was deleted before it finished", exitCode: nil)),
    OutcomeCase(name: "deleted by a stop", kind: "Pod", pods: [pod(phase: "Running", state: running, deletionTimestamp: "2026-11-17T12:01:00Z")],
                terminating: true, exit: .failed(reason: "Deleted", message: "pod default/mnist-3 was deleted", exitCode: nil)),
    OutcomeCase(name: "deleted by someone else and stuck terminating", kind: "Pod",
                pods: [pod(phase: "Running", state: running, deletionTimestamp: "2026-11-17T12:01:00Z")], now: 60 + 91,
                exit: .failed(reason: "Deleted", message: "pod default/mnist-3 was deleted before it finished and is still terminating "
                              + "(its node may be unreachable)", exitCode: nil)),
    OutcomeCase(name: "deleted by someone else, still within its grace", kind: "Pod",
                pods: [pod(phase: "Running", state: running, deletionTimestamp: "2026-11-17T12:01:00Z")], now: 60 + 89, exit: nil),
    OutcomeCase(name: "a stop that could not delete it", kind: "Pod", pods: [pod(phase: "Running", state: running)], deleteFailure: "forbidden",
                exit: .failed(reason: "DeleteFailed", message: "forbidden", exitCode: nil)),

    // A Job: its conditions and its newest pod.
    OutcomeCase(name: "its pod succeeded", kind: "Job", object: nil, pods: [pod(phase: "Succeeded", state: terminated(0, "Completed"))],
                exit: .exited(0)),
    OutcomeCase(name: "Complete, its pods gone", kind: "Job", object: job(#"{"conditions":[{"type":"Complete","status":"True"}],"succeeded":1}"#),
                pods: [], exit: .exited(0), endedByObject: true),
    OutcomeCase(name: "Failed with BackoffLimitExceeded: the newest pod's exit", kind: "Job", object: job(jobFailedCondition),
                pods: [pod("mnist-3-b", createdAfter: 60, phase: "Failed", state: terminated(2, "Error")),
                       pod("mnist-3-a", phase: "Failed", state: terminated(1, "Error"))],
                now: 200, exit: .exited(2), endedByObject: true),
    OutcomeCase(name: "Failed with BackoffLimitExceeded, OOMKilled", kind: "Job", object: job(jobFailedCondition),
                pods: [pod(phase: "Failed", state: terminated(137, "OOMKilled"))],
                exit: .failed(reason: "OOMKilled", message: "container training of pod mnist-3 ran out of memory and was killed "
                              + "(OOMKilled, exit code 137); raise its resources.limits.memory", exitCode: 137), endedByObject: true),
    OutcomeCase(name: "Failed with BackoffLimitExceeded, no pod left", kind: "Job", object: job(jobFailedCondition), pods: [],
                exit: .failed(reason: "BackoffLimitExceeded", message: "job default/mnist-3 failed: Job has reached the specified backoff limit",
                              exitCode: nil), endedByObject: true),
    OutcomeCase(name: "Failed with DeadlineExceeded", kind: "Job", object: job(jobDeadlineCondition),
                pods: [pod(phase: "Running", state: running, deletionTimestamp: "2026-11-17T12:01:00Z")],
                exit: .failed(reason: "DeadlineExceeded", message: "job default/mnist-3 failed: Job was active longer than specified deadline",
                              exitCode: nil), endedByObject: true),
    OutcomeCase(name: "running", kind: "Job", object: job(#"{"active":1}"#), pods: [pod(phase: "Running", state: running)], exit: nil),
    OutcomeCase(name: "its pod in ImagePullBackOff past the pending timeout", kind: "Job", object: job(#"{"active":1}"#),
                pods: [pod(phase: "Pending", state: imagePull)], now: 400,
                exit: .failed(reason: "ImagePullBackOff", message: "pod mnist-3 did not start within 300s: \(imagePullDetail)", exitCode: nil),
                waiting: imagePullDetail),
    OutcomeCase(name: "no pod past the pending timeout", kind: "Job", object: job("{}"), pods: [], now: 400,
                exit: .failed(reason: "NoPod", message: "job default/mnist-3 created no pod within 300s; "
                              + "`kubectl describe job -n default mnist-3` shows why (FailedCreate events)", exitCode: nil)),
    OutcomeCase(name: "no pod yet", kind: "Job", object: job("{}"), pods: [], now: 30, exit: nil),
    OutcomeCase(name: "gone", kind: "Job", object: nil, pods: [pod(phase: "Running", state: running)],
                exit: .failed(reason: "Deleted", message: "job default/mnist-3 was deleted before it finished", exitCode: nil)),

    // Any other kind: the template's conditions.
    OutcomeCase(name: "Succeeded", kind: "PyTorchJob", object: TrialObjects.pyTorchSucceeded, pods: [],
                success: KatibConditions.kubeflowSuccess, failure: KatibConditions.kubeflowFailure, exit: .exited(0), endedByObject: true),
    OutcomeCase(name: "Failed: its condition's reason and message", kind: "PyTorchJob", object: TrialObjects.pyTorchFailed,
                pods: [pod("mnist-3-master-0", phase: "Failed", state: terminated(1, "Error"))],
                success: KatibConditions.kubeflowSuccess, failure: KatibConditions.kubeflowFailure,
                exit: .failed(reason: "PyTorchJobFailed", message: "pytorchjob default/mnist-3 failed: "
                              + "PyTorchJob default/mnist-3 is failed because 1 Master replica(s) failed.", exitCode: nil), endedByObject: true),
    OutcomeCase(name: "running", kind: "PyTorchJob", object: TrialObjects.pyTorchRunning, pods: [pod("mnist-3-master-0", phase: "Running", state: running)],
                success: KatibConditions.kubeflowSuccess, failure: KatibConditions.kubeflowFailure, exit: nil),
    OutcomeCase(name: "gone", kind: "PyTorchJob", object: nil, pods: [],
                success: KatibConditions.kubeflowSuccess, failure: KatibConditions.kubeflowFailure,
                exit: .failed(reason: "Deleted", message: "pytorchjob default/mnist-3 was deleted before it finished", exitCode: nil)),
    OutcomeCase(name: "Failed: the phase's message, no reason", kind: "Workflow",
                object: TrialObjects.workflow(phase: "Failed", message: "child 'mnist-3-1' failed"), pods: [],
                success: KatibConditions.argoSuccess, failure: KatibConditions.argoFailure,
                exit: .failed(reason: "Failed", message: "workflow default/mnist-3 failed: child 'mnist-3-1' failed", exitCode: nil),
                endedByObject: true),
    OutcomeCase(name: "Succeeded", kind: "Workflow", object: TrialObjects.workflow(phase: "Succeeded"), pods: [],
                success: KatibConditions.argoSuccess, failure: KatibConditions.argoFailure, exit: .exited(0), endedByObject: true),
    OutcomeCase(name: "Succeeded False", kind: "PipelineRun", object: TrialObjects.pipelineFailed, pods: [],
                success: KatibConditions.tektonSuccess, failure: KatibConditions.tektonFailure,
                exit: .failed(reason: "Failed", message: "pipelinerun default/mnist-3 failed: Tasks Completed: 1 (Failed: 1, Cancelled 0), Skipped: 0",
                              exitCode: nil), endedByObject: true),
    OutcomeCase(name: "Succeeded Unknown", kind: "PipelineRun", object: TrialObjects.pipelineRunning, pods: [],
                success: KatibConditions.tektonSuccess, failure: KatibConditions.tektonFailure, exit: nil),
    OutcomeCase(name: "its master cannot pull its image: said, then past the pending timeout a failure", kind: "PyTorchJob",
                object: TrialObjects.pyTorchRunning, pods: [pod("mnist-3-master-0", phase: "Pending", state: imagePull)],
                success: KatibConditions.kubeflowSuccess, failure: KatibConditions.kubeflowFailure, now: 30, exit: nil, waiting: imagePullDetail),
    OutcomeCase(name: "its master cannot pull its image past the pending timeout", kind: "PyTorchJob",
                object: TrialObjects.pyTorchRunning, pods: [pod("mnist-3-master-0", phase: "Pending", state: imagePull)],
                success: KatibConditions.kubeflowSuccess, failure: KatibConditions.kubeflowFailure, now: 400,
                exit: .failed(reason: "ImagePullBackOff", message: "pod mnist-3-master-0 did not start within 300s: \(imagePullDetail)", exitCode: nil),
                waiting: imagePullDetail),
    OutcomeCase(name: "its master succeeded, its conditions not yet", kind: "PyTorchJob", object: TrialObjects.pyTorchRunning,
                pods: [pod("mnist-3-master-0", phase: "Succeeded", state: terminated(0, "Completed"))],
                success: KatibConditions.kubeflowSuccess, failure: KatibConditions.kubeflowFailure, exit: nil),
    // A Job whose template gives conditions of its own ends by them, not by its pods.
    OutcomeCase(name: "with conditions of its own: a succeeded pod is not its end", kind: "Job", object: job(#"{"active":1}"#),
                pods: [pod(phase: "Succeeded", state: terminated(0, "Completed"))],
                success: #"status.conditions.#(type=="Promoted")#"#, failure: KatibConditions.jobFailure, exit: nil),
    OutcomeCase(name: "with conditions of its own: they end it", kind: "Job",
                object: job(#"{"conditions":[{"type":"Promoted","status":"True"}]}"#), pods: [],
                success: #"status.conditions.#(type=="Promoted")#"#, failure: KatibConditions.jobFailure, exit: .exited(0), endedByObject: true),
]

private func outcome(_ example: OutcomeCase) throws -> TrialOutcome {
    TrialOutcome(kind: example.kind, name: "mnist-3", namespace: "default", object: example.object.map { parseJSON($0) as! JSONObject },
                 pods: example.pods.map { KubePod(json: parseJSON($0))! }, container: "training",
                 successCondition: try example.success.map { try GJSONPath.parse($0) },
                 failureCondition: try example.failure.map { try GJSONPath.parse($0) },
                 now: start.addingTimeInterval(example.now), pendingTimeout: 300,
                 terminating: example.terminating, deleted: example.deleted, deleteFailure: example.deleteFailure)
}

@Suite struct TrialOutcomeTests {
    @Test(arguments: outcomeCases)
    func decides(_ example: OutcomeCase) throws {
        let verdict = try outcome(example).decide()
        #expect(verdict.exit == example.exit)
        #expect(verdict.waiting?.detail == example.waiting)
        if let waiting = verdict.waiting { #expect(waiting.pod == KubePod(json: parseJSON(example.pods[0]))?.name) }
        #expect(verdict.endedByObject == example.endedByObject)
    }

    @Test func theObjectIsReadOnlyWhenThePodsDoNotSayItAll() throws {
        let succeeded = [pod(phase: "Succeeded", state: terminated(0, "Completed"))]
        let runningPod = [pod(phase: "Running", state: running)]
        #expect(try !outcome(OutcomeCase(name: "", kind: "Pod", pods: runningPod)).needsObject)
        #expect(try !outcome(OutcomeCase(name: "", kind: "Job", pods: succeeded)).needsObject)
        #expect(try outcome(OutcomeCase(name: "", kind: "Job", pods: runningPod)).needsObject)
        #expect(try outcome(OutcomeCase(name: "", kind: "PyTorchJob", pods: succeeded)).needsObject)
    }

    /// Katib's defaults per kind, where the template gives no conditions (a Pod's and a Job's end knob reads from their pods).
    @Test func katibsDefaultsPerKind() {
        let job = TrialSpecShape.defaults(kind: "Job"), pytorch = TrialSpecShape.defaults(kind: "PyTorchJob")
        #expect(job?.successCondition == KatibConditions.jobSuccess && job?.failureCondition == KatibConditions.jobFailure)
        for kind in ["TFJob", "PyTorchJob", "XGBoostJob", "MPIJob"] {
            #expect(TrialSpecShape.defaults(kind: kind) == pytorch)
        }
        #expect(pytorch?.successCondition == KatibConditions.kubeflowSuccess && pytorch?.failureCondition == KatibConditions.kubeflowFailure)
        #expect(pytorch?.primaryPodLabels == ["training.kubeflow.org/job-role": "master"])
        #expect(TrialSpecShape.defaults(kind: "TrainJob")?.successCondition == KatibConditions.jobSuccess)
        #expect(TrialSpecShape.defaults(kind: "Workflow") == nil && TrialSpecShape.defaults(kind: "Pod") == nil)
        // A Job without conditions of its own is followed by its pods; with one of them, Katib's default fills the other.
        #expect(TrialSpecShape.Ending(kind: "Job", successCondition: nil, failureCondition: nil, primaryPodLabels: nil).successCondition == nil)
        let half = TrialSpecShape.Ending(kind: "Job", successCondition: "status.succeeded", failureCondition: nil, primaryPodLabels: nil)
        #expect(half.successCondition == "status.succeeded" && half.failureCondition == KatibConditions.jobFailure)
        let labelled = TrialSpecShape.Ending(kind: "PyTorchJob", successCondition: nil, failureCondition: nil, primaryPodLabels: ["role": "a"])
        #expect(labelled.primaryPodLabels == ["role": "a"] && labelled.successCondition == KatibConditions.kubeflowSuccess)
    }

    @Test func theFailureConditionComesFirstAsInKatib() throws {
        // Both conditions hold (a template whose conditions overlap): the trial failed.
        var example = OutcomeCase(name: "", kind: "PipelineRun", object: TrialObjects.pipelineSucceeded, pods: [],
                                  success: KatibConditions.tektonSuccess, failure: #"status.conditions.#(type=="Succeeded")#"#)
        let verdict = try outcome(example).decide()
        #expect(verdict.exit == .failed(reason: "Succeeded", message: "pipelinerun default/mnist-3 failed: Tasks Completed: 1 (Failed: 0, Cancelled 0), Skipped: 0",
                                        exitCode: nil))
        example.failure = nil
        #expect(try outcome(example).decide().exit == .exited(0))
    }

    @Test func theNewestPodIsTheLastCreatedAndAFailedOneComesBeforeAnActiveOneOfTheSameSecond() throws {
        let pods = [pod("b", phase: "Running", state: running), pod("a", phase: "Failed", state: terminated(1, "Error")),
                    pod("c", createdAfter: -5, phase: "Pending", state: nil)]
        let outcome = try outcome(OutcomeCase(name: "", kind: "Job", pods: pods))
        #expect(outcome.newestPod?.name == "b")
    }
}
