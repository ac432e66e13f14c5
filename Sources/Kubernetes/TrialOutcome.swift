import Foundation
import Knob

/// Whether a Kubernetes trial has ended, and how, from what its objects say: a decision with no I/O.
///
/// A Pod's trial ends with its primary container (or the pod's own failure); a Job's with its
/// conditions (Complete, Failed) and its newest pod's container; any other kind (PyTorchJob, TFJob,
/// an Argo Workflow, a Tekton PipelineRun…) with the trial template's `failureCondition` and
/// `successCondition`, GJSON paths over the object, as Katib decides: the failure condition first.
/// A pod that does not start within `pendingTimeout` (or cannot start at all) fails a Pod's or a Job's trial.
struct TrialOutcome {
    /// The trial object's kind: `Pod`, `Job`, or any other.
    var kind: String
    var name: String
    var namespace: String
    /// The trial object as last read (not a Pod's: its pod is the object); `nil` when it is gone. Its shape is
    /// its kind's, which the template's GJSON conditions read.
    var object: JSONObject?
    /// The trial's pods as last listed or watched.
    var pods: [KubePod]
    /// The container whose exit decides the trial.
    var container: String
    var successCondition: GJSONPath?
    var failureCondition: GJSONPath?
    var now: Date
    var pendingTimeout: Double
    /// knob deletes the object to stop the trial.
    var terminating = false
    /// A pod of the trial went away (a watch's DELETED event).
    var deleted = false
    /// Why a stop could not delete the object: the trial ends with it.
    var deleteFailure: String?

    /// What the objects say.
    struct Verdict: Equatable {
        /// The trial's end, or `nil` while it runs.
        var exit: TrialExit?
        /// A pod that is not running yet and why (a reason worth telling: not a routine wait).
        var waiting: Waiting?
        /// The trial object's own status ended the trial: its pods' last events may still be on their way.
        var endedByObject = false
    }

    struct Waiting: Equatable {
        var pod: String
        var detail: String
    }

    var description: String { "\(kind.lowercased()) \(namespace)/\(name)" }

    /// The newest of the pods (a Job's retries follow one another).
    var newestPod: KubePod? { pods.max { $0.order < $1.order } }

    /// Whether deciding reads `object`: not for a Pod, nor for a Job whose newest pod succeeded.
    var needsObject: Bool {
        switch kind {
        case _ where successCondition != nil || failureCondition != nil: true
        case "Pod": false
        case "Job": !(newestPod.map { podExit($0) == .exited(0) } ?? false)
        default: true
        }
    }

    func decide() -> Verdict {
        if let deleteFailure { return Verdict(exit: .failed(reason: "DeleteFailed", message: deleteFailure, exitCode: nil)) }
        let newest = newestPod
        let gone = terminating ? "\(description) was deleted" : "\(description) was deleted before it finished"
        if successCondition != nil || failureCondition != nil {
            // Any kind by its conditions (a Job too, when its template gives conditions of its own).
            guard let object else { return Verdict(exit: .failed(reason: "Deleted", message: gone, exitCode: nil)) }
            if let exit = conditionsExit(object) { return Verdict(exit: exit, endedByObject: true) }
            // A primary pod that cannot start says so (and fails the trial after `pendingTimeout`).
            guard let pod = newest else { return Verdict() }
            return pendingFailure(pod)
        }
        switch kind {
        case "Pod":
            guard let pod = newest else { return Verdict(exit: .failed(reason: "Deleted", message: gone, exitCode: nil)) }
            let exit = podExit(pod)
            if let deletion = pod.metadata?.deletionTimestamp, exit != .exited(0) {
                // Deleted before it finished: by knob (a stop), or by someone else (an eviction, kubectl delete).
                if exit != nil || deleted || terminating {
                    return Verdict(exit: .failed(reason: "Deleted", message: gone, exitCode: exit?.code))
                }
                if let stuck = stuckDeleting(pod, since: deletion) { return Verdict(exit: stuck) }
            }
            if let exit { return Verdict(exit: exit) }
            return pendingFailure(pod)
        case "Job":
            if let pod = newest, podExit(pod) == .exited(0) { return Verdict(exit: .exited(0)) }
            guard let object else { return Verdict(exit: .failed(reason: "Deleted", message: gone, exitCode: nil)) }
            let job = KubeJob(json: object) ?? KubeJob()
            if let exit = jobExit(job, newest: newest) { return Verdict(exit: exit, endedByObject: true) }
            if let pod = newest { return pendingFailure(pod) }
            return Verdict(exit: jobWithoutPod(job))
        default:
            // A kind without conditions is refused by the spec's validation: nothing says when it ends, but its deletion.
            guard object != nil else { return Verdict(exit: .failed(reason: "Deleted", message: gone, exitCode: nil)) }
            return Verdict()
        }
    }

    // MARK: Any kind, by its conditions

    /// The trial's end by the template's conditions, as Katib reads them: a met failure condition fails
    /// the trial with the reason and message of what it found (its first item's, for an array).
    private func conditionsExit(_ object: JSONObject) -> TrialExit? {
        if let failure = failureCondition, let found = failure.evaluate(object), GJSONPath.isMet(found) {
            let first = (found as? [Any])?.first ?? found
            let condition = first as? JSONObject ?? [:]
            let reason = condition["reason"] as? String ?? "Failed"
            let message = condition["message"] as? String ?? reason
            return .failed(reason: reason, message: "\(description) failed: \(message)", exitCode: nil)
        }
        if let success = successCondition, success.holds(in: object) { return .exited(0) }
        return nil
    }

    // MARK: Pods

    private func primaryState(_ pod: KubePod) -> KubePod.ContainerState? {
        pod.containerStatus(container)?.state
    }

    /// How the pod's primary container ended, if it did.
    func podExit(_ pod: KubePod) -> TrialExit? {
        let status = pod.status
        let podName = pod.name
        // The pod's own reason first: an evicted pod, or one past its activeDeadlineSeconds, also has a killed container.
        if status?.phase == "Failed", let reason = status?.reason {
            return .failed(reason: reason, message: "pod \(podName) failed: \(status?.message ?? reason)", exitCode: nil)
        }
        // A bare pod whose container restarts (restartPolicy OnFailure) ends its trial at the first exit.
        let lastTerminated = kind == "Pod" ? pod.containerStatus(container)?.lastState?.terminated : nil
        if let terminated = primaryState(pod)?.terminated ?? lastTerminated {
            let code = Int32(truncatingIfNeeded: terminated.exitCode ?? -1)
            switch terminated.reason {
            case nil, "Completed", "Error":
                return .exited(code)
            case "OOMKilled":
                return .failed(reason: "OOMKilled", message: "container \(container) of pod \(podName) ran out of memory and was killed "
                               + "(OOMKilled, exit code \(code)); raise its resources.limits.memory", exitCode: code)
            case let reason?:
                let said = terminated.message.map { ": \($0)" } ?? ""
                return .failed(reason: reason, message: "container \(container) of pod \(podName) ended with \(reason) (exit code \(code))\(said)",
                               exitCode: code)
            }
        }
        if status?.phase == "Failed" {
            return .failed(reason: "PodFailed", message: "pod \(podName) failed: \(status?.message ?? "no reason given")", exitCode: nil)
        }
        return nil
    }

    /// A pod that has not started within `pendingTimeout` (or cannot start at all) fails its trial with the reason.
    private func pendingFailure(_ pod: KubePod) -> Verdict {
        guard pod.status?.phase == "Pending" || pod.status?.phase == nil else { return Verdict() }
        let podName = pod.name
        var reason = "Pending"
        var detail = "it is still Pending"
        func describe(_ waiting: KubePod.ContainerState.Waiting) -> (String, String)? {
            guard let why = waiting.reason else { return nil }
            return (why, "\(why)\(waiting.message.map { ": \($0)" } ?? "")")
        }
        if let waiting = primaryState(pod)?.waiting, let (why, said) = describe(waiting) {
            (reason, detail) = (why, said)
            if ["InvalidImageName", "ErrImageNeverPull"].contains(why) {
                return Verdict(exit: .failed(reason: why, message: "pod \(podName) cannot start: \(detail)", exitCode: nil))
            }
            if why == "PodInitializing" {
                // Init containers are at work (fetching data, say): not stuck, unless one of them is.
                let initStatuses = pod.status?.initContainerStatuses ?? []
                guard let stuck = initStatuses.compactMap({ $0.state?.waiting }).compactMap(describe)
                    .first(where: { $0.0 != "PodInitializing" }) else { return Verdict() }
                (reason, detail) = stuck
            }
        } else if let unscheduled = pod.unscheduled {
            reason = unscheduled.reason ?? "Unschedulable"
            detail = "\(reason)\(unscheduled.message.map { ": \($0)" } ?? "")"
        }
        var verdict = Verdict()
        if reason != "Pending", !routineWaits.contains(reason) { verdict.waiting = Waiting(pod: podName, detail: detail) }
        guard let created = parseKubeTime(pod.creation), now.timeIntervalSince(created) > pendingTimeout else { return verdict }
        verdict.exit = .failed(reason: reason, message: "pod \(podName) did not start within \(formatSeconds(.seconds(pendingTimeout))): \(detail)",
                               exitCode: nil)
        return verdict
    }

    /// A pod deleted by someone else that never goes away (its node is gone) ends its trial after its grace period and a minute.
    private func stuckDeleting(_ pod: KubePod, since deletion: String) -> TrialExit? {
        let grace = pod.metadata?.deletionGracePeriodSeconds ?? 30
        guard let deleted = parseKubeTime(deletion), now.timeIntervalSince(deleted) > grace + 60 else { return nil }
        return .failed(reason: "Deleted", message: "\(description) was deleted before it finished and is still terminating "
                       + "(its node may be unreachable)", exitCode: nil)
    }

    // MARK: Jobs

    /// A Job that made no pod within `pendingTimeout` (a quota, an admission webhook, a pod security policy refuses it).
    private func jobWithoutPod(_ job: KubeJob) -> TrialExit? {
        guard let created = parseKubeTime(job.metadata?.creationTimestamp ?? ""), now.timeIntervalSince(created) > pendingTimeout else { return nil }
        return .failed(reason: "NoPod", message: "\(description) created no pod within \(formatSeconds(.seconds(pendingTimeout))); "
                       + "`kubectl describe job -n \(namespace) \(name)` shows why (FailedCreate events)", exitCode: nil)
    }

    /// How a Job ended, from its conditions (and its newest pod's container).
    private func jobExit(_ job: KubeJob, newest: KubePod?) -> TrialExit? {
        if job.holds("Complete") != nil { return .exited(0) }
        guard let failed = job.holds("Failed") else { return nil }
        let reason = failed.reason ?? "JobFailed"
        if reason == "BackoffLimitExceeded", let pod = newest, let exit = podExit(pod) { return exit }
        return .failed(reason: reason, message: "\(description) failed: \(failed.message ?? reason)", exitCode: nil)
    }
}

/// Reasons every pod waits for on its way to running: not worth saying.
let routineWaits: Set<String> = ["ContainerCreating", "PodInitializing"]
