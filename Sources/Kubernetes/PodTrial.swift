import Foundation
import Knob
import Synchronization

/// One trial's object followed: a Pod's or a Job's through its pods' watch (relisting when the watch
/// expires); any other kind (or a Job with conditions of its own) through a watch of the object, whose
/// conditions end the trial, beside a watch of its pods (those with its labels or owned by it), whose
/// primary ones have the log to read. The primary container's log is followed (resumed with
/// `sinceTime` when it drops, without writing a line twice).
final class PodTrial: RunningTrial, @unchecked Sendable {
    struct Target: Sendable {
        var resource: KubeResource
        var name: String
        var namespace: String
        var container: String
        /// The container whose log is read: `container`, or the metrics collector's sidecar.
        var logContainer: String
        var trial: String
        /// The trial's `knob.dev/trial-uid` label (empty for objects made without one).
        var uid: String
        var logPath: String
        var retain: Bool
        /// GJSON paths over the object (`nil` for a Pod, and a Job without conditions of its own).
        var successCondition: String? = nil
        var failureCondition: String? = nil
        /// The labels of the pods whose log is read; empty: all the trial's pods.
        var primaryPodLabels: [String: String] = [:]
        /// The object's pods carry the trial's labels (knob put them on its pod templates); when they may not (an
        /// Argo Workflow's), its pods are found among the namespace's by their owner.
        var podsCarryLabels = true

        var kind: String { resource.kind }

        var handle: [String: String] {
            var handle = ["runner": "kubernetes", "kind": kind, "apiVersion": resource.apiVersion, "resource": resource.plural, "name": name,
                          "namespace": namespace, "container": container, "logContainer": logContainer, "trial": trial, "uid": uid,
                          "log": logPath, "retain": retain ? "true" : "false"]
            if !podsCarryLabels { handle["podsByOwner"] = "true" }
            handle["successCondition"] = successCondition
            handle["failureCondition"] = failureCondition
            if !primaryPodLabels.isEmpty,
               let data = try? JSONSerialization.data(withJSONObject: primaryPodLabels, options: .sortedKeys) {
                handle["primaryPodLabels"] = String(decoding: data, as: UTF8.self)
            }
            return handle
        }

        var objectPath: String { resource.object(namespace, name) }
        var description: String { "\(kind.lowercased()) \(namespace)/\(name)" }
        var selector: String { TrialManifest.selector(trial: trial, uid: uid) }
        /// The log comes from a sidecar, which the kubelet stops after the trial's containers: it is read until it ends.
        var logFromSidecar: Bool { logContainer != container }
        /// The object's conditions end the trial (not its pods).
        var endsByConditions: Bool { successCondition != nil || failureCondition != nil }
        /// How to delete it by hand.
        var kubectlDelete: String { "kubectl delete \(resource.kubectlName) -n \(namespace) \(name)" }
        /// The query that lists or watches the trial's pods: by its labels, or all the namespace's when they may not carry them.
        var podQuery: [(String, String)] { podsCarryLabels ? [("labelSelector", selector)] : [] }

        /// Whether `pod` is the trial's: it has the trial's labels, or the object owns it.
        func owns(_ pod: KubePod, objectUID: String?) -> Bool {
            let labels = pod.labels
            if labels["knob.dev/trial"] == trial, uid.isEmpty || labels["knob.dev/trial-uid"] == uid { return true }
            guard let objectUID else { return false }
            return (pod.metadata?.ownerReferences ?? []).contains { $0.uid == objectUID }
        }

        /// Whether `pod` has the log to read: it carries every primary pod label.
        func isPrimary(_ pod: KubePod) -> Bool {
            let labels = pod.labels
            return primaryPodLabels.allSatisfy { labels[$0.key] == $0.value }
        }
    }

    let client: KubeClient
    let target: Target
    let pendingTimeout: Double
    private let lock = NSLock()
    /// The pods whose primary container has started, oldest first (a Job's retries follow one another),
    /// and those among them that have ended (phase Succeeded or Failed, or deleted).
    private var startedPods: [String] = []
    private var endedPods: Set<String> = []
    private var outcome: TrialExit?
    private var terminating = false
    /// Why a stop could not delete the object (permission, for example): the trial ends with it.
    private var deleteFailure: String?
    /// When the Job was created (a Job with no pod yet times out from then).
    private var jobCreated: Date?
    /// Why the pod is not running yet (`nil` once it runs); every reason reported so far; who is told.
    private var waiting: String?
    private var waitingSaid: Set<String> = []
    private var waitingReport: (@Sendable (String) -> Void)?

    init(client: KubeClient, target: Target, pendingTimeout: Double) {
        self.client = client
        self.target = target
        self.pendingTimeout = pendingTimeout
    }

    var handle: [String: String] { target.handle }

    func onWaiting(_ report: @escaping @Sendable (String) -> Void) {
        let current = lock.withLock {
            waitingReport = report
            return waiting
        }
        if let current { report(current) }
    }

    /// Says once to `onWaiting` each reason a pod is not running (the kubelet retries a failed
    /// image pull, alternating ErrImagePull and ImagePullBackOff; the scheduler retries a pod that
    /// does not fit).
    private func noteWaiting(pod: String, _ detail: String) {
        let text = "pod \(pod) is not running yet: \(detail)"
        let (changed, report) = lock.withLock { () -> (Bool, (@Sendable (String) -> Void)?) in
            guard waitingSaid.insert(text).inserted else { return (false, nil) }
            waiting = text
            return (true, waitingReport)
        }
        if changed { report?(text) }
    }

    func wait() async -> TrialExit {
        let logs = Task { await followLog() }
        let exit = await withTaskCancellationHandler {
            await watchStatus()
        } onCancel: {
            logs.cancel()
        }
        lock.withLock { outcome = exit }
        await logs.value
        if target.logFromSidecar, exit != .exited(0) { await noteTrialOutput() }
        return exit
    }

    /// The trial's log is its collector's output: when the trial fails, the last lines of its own container's
    /// output go in too, so that the trial's message says what went wrong.
    private func noteTrialOutput() async {
        guard let pod = lock.withLock({ startedPods.last }) else { return }
        let lines = Mutex<[String]>([])
        _ = try? await client.stream(KubePath.log(target.namespace, pod), query: [("container", target.container), ("tailLines", "5")]) { line in
            lines.withLock { $0.append(String(decoding: line, as: UTF8.self)) }
        }
        let writer = LogWriter(logPath: target.logPath)
        for line in lines.withLock({ $0 }) { writer.note("\(target.container): \(line)") }
    }

    /// Deletes the finished Pod or Job (a stopped one is already being deleted), unless the template retains it.
    func release() async {
        let deleted = lock.withLock { terminating }
        if !target.retain && !deleted { try? await delete(grace: nil) }
    }

    func terminate(grace: Duration) async {
        lock.withLock { terminating = true }
        do {
            try await delete(grace: grace)
        } catch let error as KubeAPIError where error.status != 404 {
            let message = "could not delete \(target.description) to stop the trial: \(error); delete it yourself: \(target.kubectlDelete)"
            lock.withLock { deleteFailure = message }
            LogWriter(logPath: target.logPath).note("knob: \(message)")
        } catch {}
    }

    private func delete(grace: Duration?) async throws {
        var query = [("propagationPolicy", "Foreground")]
        if let grace { query.append(("gracePeriodSeconds", "\(max(0, grace.components.seconds))")) }
        try await client.request("DELETE", target.objectPath, query: query)
        // A Job's grace period is not its pods': the garbage collector deletes them with their own. Delete them too.
        guard target.kind == "Job", !target.endsByConditions, grace != nil,
              let list = try? await client.request("GET", KubePath.pods(target.namespace), query: [("labelSelector", target.selector)]) else { return }
        for pod in KubePod.items(of: list) {
            _ = try? await client.request("DELETE", KubePath.pod(target.namespace, pod.name), query: query)
        }
    }

    // MARK: Status

    /// Watches the trial's pods (by label) until the trial ends; a trial that ends by its conditions, its object too.
    private func watchStatus() async -> TrialExit {
        if target.endsByConditions { return await followObject() }
        return await following { listed in
            let list = try await client.request("GET", KubePath.pods(target.namespace), query: [("labelSelector", target.selector)])
            listed()
            let pods = KubePod.items(of: list)
            if let exit = try await decide(pods: pods) { return exit }
            let resourceVersion = (list["metadata"] as? JSONObject)?["resourceVersion"] as? String ?? ""
            return try await watch(from: resourceVersion, pods: pods)
        }
    }

    /// Runs `round` (a list, then a watch from it) until it returns the trial's end. A watch that expired (410 Gone)
    /// lists again; an API error that will not pass ends the trial; an API out of reach (its retries spent) is tried
    /// again every 10 s, for about ten minutes since the last list that worked (`round` calls `listed` after one).
    private func following(_ round: (_ listed: () -> Void) async throws -> TrialExit?) async -> TrialExit {
        var failures = 0
        while true {
            if Task.isCancelled { return .lost }
            do {
                if let exit = try await round({ failures = 0 }) { return exit }
            } catch let error as KubeAPIError where error.status == 410 {
                continue
            } catch let error as KubeAPIError where !error.isTransient {
                return .failed(reason: "KubernetesAPIError", message: "following \(target.description) failed: \(error)", exitCode: nil)
            } catch {
                failures += 1
                if failures > 60 {
                    return .failed(reason: "KubernetesAPIError", message: "lost the Kubernetes API while following \(target.description): \(error)",
                                   exitCode: nil)
                }
                try? await Task.sleep(for: .seconds(10))
            }
        }
    }

    /// Follows a trial that ends by its object's conditions: the object (by its labels) and the namespace's pods
    /// (the trial's are those with its labels or owned by the object) are listed, then watched side by side;
    /// each event decides again, with no further request. A watch that ends (its timeout, 410 Gone) lists again.
    private func followObject() async -> TrialExit {
        let conditions = (success: target.successCondition.flatMap { try? GJSONPath.parse($0) },
                          failure: target.failureCondition.flatMap { try? GJSONPath.parse($0) })
        return await following { listed in
            let objects = try await client.request("GET", target.resource.collection(target.namespace), query: [("labelSelector", target.selector)])
            let podList = try await client.request("GET", KubePath.pods(target.namespace), query: target.podQuery)
            listed()
            let state = ObjectState(target: target)
            state.setObject(((objects["items"] as? [JSONObject]) ?? []).first { ($0["metadata"] as? JSONObject)?["name"] as? String == target.name })
            for pod in KubePod.items(of: podList) { _ = state.apply(type: "ADDED", pod: pod) }
            if let exit = await decide(state, conditions) { return exit }
            let versions = [objects, podList].map { ($0["metadata"] as? JSONObject)?["resourceVersion"] as? String ?? "" }
            return try await watch(state, conditions, objectVersion: versions[0], podVersion: versions[1])
        }
    }

    /// The object's and the pods' watches side by side, until one decides the trial's end (returned) or a watch ends (`nil`: list again).
    private func watch(_ state: ObjectState, _ conditions: (success: GJSONPath?, failure: GJSONPath?),
                       objectVersion: String, podVersion: String) async throws -> TrialExit? {
        let cancel = CancelFlag()
        let found = Mutex<TrialExit?>(nil)
        let seconds = "\(state.hasPrimaryPod ? 60 : Int(max(1, min(10, pendingTimeout))))"
        @Sendable func parse(_ line: Data) -> (String, JSONObject)? {
            guard let event = try? JSONSerialization.jsonObject(with: line) as? JSONObject,
                  let type = event["type"] as? String, let object = event["object"] as? JSONObject else { return nil }
            return (type, object)
        }
        let decideNow: @Sendable () -> Void = { [self] in
            if let exit = self.verdict(state, conditions) {
                found.withLock { $0 = $0 ?? exit }
                cancel.cancel()
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [client, target] in
                try await client.stream(target.resource.collection(target.namespace), query: [
                    ("labelSelector", target.selector), ("watch", "true"), ("resourceVersion", objectVersion), ("timeoutSeconds", seconds),
                ], cancel: cancel) { line in
                    guard let (type, object) = parse(line) else { return }
                    if type == "ERROR" { state.expire(); cancel.cancel(); return }
                    guard (object["metadata"] as? JSONObject)?["name"] as? String == target.name else { return }
                    state.setObject(type == "DELETED" ? nil : object)
                    decideNow()
                }
                cancel.cancel()
            }
            group.addTask { [client, target] in
                try await client.stream(KubePath.pods(target.namespace), query: target.podQuery + [
                    ("watch", "true"), ("resourceVersion", podVersion), ("timeoutSeconds", seconds), ("allowWatchBookmarks", "false"),
                ], cancel: cancel) { line in
                    guard let (type, object) = parse(line) else { return }
                    if type == "ERROR" { state.expire(); cancel.cancel(); return }
                    if let pod = KubePod(json: object), state.apply(type: type, pod: pod) { decideNow() }
                }
                cancel.cancel()
            }
            try await group.waitForAll()
        }
        if let exit = found.withLock({ $0 }) { return await ended(state, exit) }
        if state.expired { return nil }
        return await decide(state, conditions)
    }

    /// The trial's end, if its object and pods say it ended, with the log's pods listed once more when it did.
    private func decide(_ state: ObjectState, _ conditions: (success: GJSONPath?, failure: GJSONPath?)) async -> TrialExit? {
        guard let exit = verdict(state, conditions) else { return nil }
        return await ended(state, exit)
    }

    /// The object's status can come before its pods' last events: the pods are listed once more, so that the
    /// log of every primary pod that ran is read before the trial's end is recorded.
    private func ended(_ state: ObjectState, _ exit: TrialExit) async -> TrialExit {
        if let list = try? await client.request("GET", KubePath.pods(target.namespace), query: target.podQuery) {
            for pod in KubePod.items(of: list) { _ = state.apply(type: "MODIFIED", pod: pod) }
            noteStarted(state.primaryPods)
        }
        return exit
    }

    /// What the object and its pods say now (no I/O).
    private func verdict(_ state: ObjectState, _ conditions: (success: GJSONPath?, failure: GJSONPath?)) -> TrialExit? {
        let pods = state.primaryPods
        noteStarted(pods)
        let (terminating, deleteFailure) = lock.withLock { (self.terminating, self.deleteFailure) }
        let outcome = TrialOutcome(kind: target.kind, name: target.name, namespace: target.namespace, object: state.object, pods: pods,
                                   container: target.container, successCondition: conditions.success, failureCondition: conditions.failure,
                                   now: Date(), pendingTimeout: pendingTimeout, terminating: terminating, deleteFailure: deleteFailure)
        let verdict = outcome.decide()
        if let waiting = verdict.waiting { noteWaiting(pod: waiting.pod, waiting.detail) }
        return verdict.exit
    }

    /// One watch from `resourceVersion`; returns the trial's end if it came, `nil` to relist
    /// (the watch timed out, or expired with 410 Gone).
    private func watch(from resourceVersion: String, pods: [KubePod]) async throws -> TrialExit? {
        let events = EventBox(pods: pods)
        let started = lock.withLock { !startedPods.isEmpty }
        let seconds = started ? 60 : Int(max(1, min(10, pendingTimeout)))
        let cancel = CancelFlag()
        try await client.stream(KubePath.pods(target.namespace), query: [
            ("labelSelector", target.selector), ("watch", "true"),
            ("resourceVersion", resourceVersion), ("timeoutSeconds", "\(seconds)"), ("allowWatchBookmarks", "false"),
        ], cancel: cancel) { line in
            guard let event = try? JSONSerialization.jsonObject(with: line) as? JSONObject, let type = event["type"] as? String else { return }
            if type == "ERROR" {
                events.expire()
                cancel.cancel()
            } else if let pod = event["object"].flatMap({ KubePod(json: $0) }), events.add(type: type, pod: pod) {
                cancel.cancel()
            }
        }
        if events.expired { return nil }
        return try await decide(pods: events.pods, deleted: events.deleted)
    }

    /// The trial's end, if the pods (and the Job) say it ended.
    private func decide(pods: [KubePod], deleted: Bool = false) async throws -> TrialExit? {
        noteStarted(pods)
        let (terminating, deleteFailure) = lock.withLock { (self.terminating, self.deleteFailure) }
        var outcome = TrialOutcome(kind: target.kind, name: target.name, namespace: target.namespace, object: nil, pods: pods,
                                   container: target.container, now: Date(), pendingTimeout: pendingTimeout,
                                   terminating: terminating, deleted: deleted, deleteFailure: deleteFailure)
        if deleteFailure == nil, outcome.needsObject {
            do {
                outcome.object = try await client.request("GET", target.objectPath)
            } catch let error as KubeAPIError where error.status == 404 {
                outcome.object = nil  // gone
            }
            outcome.now = Date()
        }
        let verdict = outcome.decide()
        if let waiting = verdict.waiting { noteWaiting(pod: waiting.pod, waiting.detail) }
        if verdict.endedByObject {
            // The object's status can come before its last pod's events: list the pods once more, so that
            // the log of every pod that ran is read before the trial's end is recorded.
            if let list = try? await client.request("GET", KubePath.pods(target.namespace), query: [("labelSelector", target.selector)]) {
                noteStarted(KubePod.items(of: list))
            }
        }
        return verdict.exit
    }

    /// Remembers which pods have a log to read (the container whose log is read started), oldest first,
    /// and which of them have ended.
    private func noteStarted(_ pods: [KubePod]) {
        lock.withLock {
            for pod in pods.sorted(by: { $0.order < $1.order }) {
                if pod.containerStatus(target.container)?.started ?? false { waiting = nil }
                guard pod.containerStatus(target.logContainer)?.started ?? false else { continue }
                if !startedPods.contains(pod.name) { startedPods.append(pod.name) }
                if pod.ended { endedPods.insert(pod.name) }
            }
        }
    }

    // MARK: Log

    /// Streams the log (the primary container's, or the collector sidecar's) into the trial's log file
    /// until the trial has ended and the log is read to its end: each started pod in turn (a Job's
    /// retries), each read to its end once it has ended. A sidecar outlives the trial's container (it
    /// reads the metrics written last when it is stopped), so its log is followed until it ends.
    private func followLog() async {
        let writer = LogWriter(logPath: target.logPath)
        var failures = 0
        while !Task.isCancelled {
            let (pods, ended, trialEnded) = lock.withLock { (startedPods, endedPods, outcome != nil) }
            guard let pod = pods.first(where: { !writer.isDone($0) }) else {
                if trialEnded { return }
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            writer.switchTo(pod: pod)
            // A pod that ended has its whole log there: read it to the end, then move on.
            let toTheEnd = ended.contains(pod) || (trialEnded && !target.logFromSidecar)
            var query = [("container", target.logContainer), ("timestamps", "true")]
            if !toTheEnd { query.append(("follow", "true")) }
            if let since = writer.cursor.time { query.append(("sinceTime", since.sinceTimeText)) }
            do {
                let complete = try await client.stream(KubePath.log(target.namespace, pod), query: query) { line in
                    writer.write(line)
                }
                failures = 0
                // A followed log ends when its container does: once the trial has ended, the sidecar's log is all there.
                if complete && (toTheEnd || trialEnded) {
                    writer.finish(pod: pod)
                    continue
                }
            } catch let error as KubeAPIError where error.status == 404 {
                writer.finish(pod: pod)  // the pod is gone, and its log with it
                continue
            } catch {
                // Refused (no access to pods/log), or the kubelet is unreachable: try again, slower each time; once
                // the trial has ended, give up on this pod's log after a while and say so in the log.
                failures += 1
                if trialEnded && failures >= 5 {
                    writer.note("knob: could not read the rest of pod \(pod)'s log: \(error)")
                    writer.finish(pod: pod)
                    failures = 0
                    continue
                }
            }
            try? await Task.sleep(for: .milliseconds(min(10_000, 300 * (1 << min(failures, 5)))))
        }
    }
}

extension PodTrial.Target {
    init(_ manifest: TrialManifest, launch: TrialLaunch) {
        self.init(resource: manifest.resource, name: manifest.name, namespace: manifest.namespace, container: manifest.primaryContainer,
                  logContainer: manifest.logContainer, trial: launch.trialName, uid: launch.trialUID, logPath: launch.logPath,
                  retain: manifest.retain, successCondition: manifest.ending.successCondition,
                  failureCondition: manifest.ending.failureCondition, primaryPodLabels: manifest.ending.primaryPodLabels,
                  podsCarryLabels: manifest.podsCarryLabels)
    }

    init?(handle: [String: String]) {
        guard let kind = handle["kind"], let name = handle["name"],
              let namespace = handle["namespace"], let container = handle["container"], let trial = handle["trial"],
              let logPath = handle["log"] else { return nil }
        // Handles recorded before any kind could run name a Pod or a Job only.
        let resource: KubeResource
        if let apiVersion = handle["apiVersion"], let plural = handle["resource"] {
            resource = KubeResource(apiVersion: apiVersion, kind: kind, plural: plural)
        } else if let known = [KubeResource.pod, .job].first(where: { $0.kind == kind }) {
            resource = known
        } else {
            return nil
        }
        let labels = handle["primaryPodLabels"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] } ?? [:]
        self.init(resource: resource, name: name, namespace: namespace, container: container, logContainer: handle["logContainer"] ?? container,
                  trial: trial, uid: handle["uid"] ?? "", logPath: logPath, retain: handle["retain"] == "true",
                  successCondition: handle["successCondition"], failureCondition: handle["failureCondition"], primaryPodLabels: labels,
                  podsCarryLabels: handle["podsByOwner"] != "true")
    }
}

/// A trial object and its pods as last listed or watched (the object's watch and the pods' write here side by side).
private final class ObjectState: @unchecked Sendable {
    private let target: PodTrial.Target
    private let lock = NSLock()
    private var current: JSONObject?
    private var pods: [String: KubePod] = [:]
    private var didExpire = false

    init(target: PodTrial.Target) { self.target = target }

    var object: JSONObject? { lock.withLock { current } }
    var expired: Bool { lock.withLock { didExpire } }
    /// The trial's pods whose log is read.
    var primaryPods: [KubePod] { lock.withLock { Array(pods.values) }.filter(target.isPrimary) }
    var hasPrimaryPod: Bool { !primaryPods.isEmpty }

    func setObject(_ object: JSONObject?) { lock.withLock { current = object } }
    func expire() { lock.withLock { didExpire = true } }

    /// Records a pod's event; true when the pod is the trial's (so the trial is decided again).
    func apply(type: String, pod: KubePod) -> Bool {
        lock.withLock {
            let uid = (current?["metadata"] as? JSONObject)?["uid"] as? String
            guard target.owns(pod, objectUID: uid) else { return false }
            if type == "DELETED" { pods.removeValue(forKey: pod.name) } else { pods[pod.name] = pod }
            return true
        }
    }
}

/// Watch events as they arrive, kept for `decide`.
private final class EventBox: @unchecked Sendable {
    private let lock = NSLock()
    private var byName: [String: KubePod] = [:]
    private var order: [String] = []
    private var sawRunning: Set<String> = []
    private var sawDeleting: Set<String> = []
    /// Each pod's reasons to wait seen so far (pod name, then reason).
    private var sawWaiting: Set<[String]> = []
    private(set) var expired = false
    private(set) var deleted = false

    init(pods: [KubePod]) {
        for pod in pods { _ = add(type: "ADDED", pod: pod) }
    }

    /// The watch expired (an ERROR event): list again.
    func expire() { lock.withLock { expired = true } }

    /// Records one event; true when the watch should stop to decide again (a pod started, ended,
    /// went, is being deleted, or waits for a reason not seen before).
    func add(type: String, pod: KubePod) -> Bool {
        lock.withLock {
            let name = pod.name
            guard !name.isEmpty else { return false }
            if type == "DELETED" {
                byName.removeValue(forKey: name)
                order.removeAll { $0 == name }
                deleted = true
                return true
            }
            if byName[name] == nil { order.append(name) }
            byName[name] = pod
            let states = (pod.status?.containerStatuses ?? []).compactMap(\.state)
            if states.contains(where: { $0.running != nil }), sawRunning.insert(name).inserted { return true }
            if pod.metadata?.deletionTimestamp != nil, sawDeleting.insert(name).inserted { return true }
            var waits = states.compactMap { $0.waiting?.reason }.filter { !routineWaits.contains($0) }
            if let unscheduled = pod.unscheduled { waits.append(unscheduled.reason ?? "Unschedulable") }
            if waits.map({ sawWaiting.insert([name, $0]).inserted }).contains(true) { return true }
            return pod.ended || states.contains { $0.terminated != nil }
        }
    }

    var pods: [KubePod] { lock.withLock { order.compactMap { byName[$0] } } }
}

/// Appends a pod's log lines to the trial's log file, each once: lines come with the kubelet's
/// timestamps, and the last one written (with how many lines carried it) is kept beside the
/// log, so a stream resumed with `sinceTime` — which has whole-second precision — skips what
/// was already written, also after a restart.
final class LogWriter: @unchecked Sendable {
    struct Cursor: Codable {
        var pod: String?
        var time: KubeTime?
        var count = 0
        /// Pods whose log was read to its end.
        var done: [String] = []
    }

    let logPath: String
    private(set) var cursor: Cursor
    /// Lines at `cursor.time` still to skip in the current stream.
    private var skip = 0
    /// A resumed stream repeats what was written: until it passes the cursor, older lines are skipped.
    /// (Past it, a line may be a little older than the one before: stdout and stderr are stamped apart.)
    private var catchingUp = false

    init(logPath: String) {
        self.logPath = logPath
        cursor = (FileManager.default.contents(atPath: logPath + ".cursor"))
            .flatMap { try? JSONDecoder().decode(Cursor.self, from: $0) } ?? Cursor()
    }

    /// Starts a stream of `pod`'s log (a Job's next pod starts from its beginning).
    func switchTo(pod: String) {
        if cursor.pod != pod { cursor = Cursor(pod: pod, done: cursor.done) }
        skip = cursor.count
        catchingUp = cursor.time != nil
    }

    func isDone(_ pod: String) -> Bool { cursor.done.contains(pod) }

    /// Marks `pod`'s log as read to its end.
    func finish(pod: String) {
        guard !cursor.done.contains(pod) else { return }
        cursor.done.append(pod)
        save()
    }

    func write(_ line: Data) {
        guard let space = line.firstIndex(of: UInt8(ascii: " ")), let time = KubeTime.parse(String(decoding: line[..<space], as: UTF8.self)) else {
            append(line)
            return
        }
        if catchingUp, let last = cursor.time {
            if time < last { return }
            if time == last, skip > 0 {
                skip -= 1
                return
            }
        }
        catchingUp = false
        append(line[line.index(after: space)...])
        if time == cursor.time {
            cursor.count += 1
        } else if cursor.time.map({ time > $0 }) ?? true {
            cursor.time = time
            cursor.count = 1
        }
        save()
    }

    /// A line of knob's own in the log (not a report of the trial's).
    func note(_ text: String) {
        append(Data(text.utf8))
    }

    private func save() {
        if let data = try? JSONEncoder().encode(cursor) { try? data.write(to: URL(fileURLWithPath: logPath + ".cursor"), options: .atomic) }
    }

    /// The log, opened once for appending (O_APPEND: every write lands at its end, also beside another writer's notes).
    private lazy var file: FileHandle? = {
        let descriptor = open(logPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        return descriptor < 0 ? nil : FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    }()

    private func append(_ text: Data) {
        var data = Data(text)
        data.append(UInt8(ascii: "\n"))
        try? file?.write(contentsOf: data)
    }
}
