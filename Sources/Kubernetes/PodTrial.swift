import Foundation
import Knob

/// One trial's Pod or Job, followed: its status through a watch (relisting when the watch
/// expires), its primary container's log through a followed log stream (resumed with
/// `sinceTime` when it drops, without writing a line twice).
final class PodTrial: RunningTrial, @unchecked Sendable {
    struct Target: Sendable {
        var kind: TrialManifest.Kind
        var name: String
        var namespace: String
        var container: String
        var trial: String
        var logPath: String
        var retain: Bool

        init(kind: TrialManifest.Kind, name: String, namespace: String, container: String, trial: String, logPath: String, retain: Bool) {
            self.kind = kind
            self.name = name
            self.namespace = namespace
            self.container = container
            self.trial = trial
            self.logPath = logPath
            self.retain = retain
        }

        init?(handle: [String: String]) {
            guard let kind = handle["kind"].flatMap(TrialManifest.Kind.init(rawValue:)), let name = handle["name"],
                  let namespace = handle["namespace"], let container = handle["container"], let trial = handle["trial"],
                  let logPath = handle["log"] else { return nil }
            self.init(kind: kind, name: name, namespace: namespace, container: container, trial: trial, logPath: logPath,
                      retain: handle["retain"] == "true")
        }

        var handle: [String: String] {
            ["runner": "kubernetes", "kind": kind.rawValue, "name": name, "namespace": namespace, "container": container,
             "trial": trial, "log": logPath, "retain": retain ? "true" : "false"]
        }

        var objectPath: String { kind == .pod ? KubePath.pod(namespace, name) : KubePath.job(namespace, name) }
        var description: String { "\(kind.rawValue.lowercased()) \(namespace)/\(name)" }
    }

    let client: KubeClient
    let target: Target
    let pendingTimeout: Double
    private let lock = NSLock()
    /// The pods whose primary container has started, oldest first (a Job's retries follow one another),
    /// and those among them whose container has ended.
    private var startedPods: [String] = []
    private var endedPods: Set<String> = []
    private var outcome: TrialExit?
    private var terminating = false

    init(client: KubeClient, target: Target, pendingTimeout: Double) {
        self.client = client
        self.target = target
        self.pendingTimeout = pendingTimeout
    }

    var handle: [String: String] { target.handle }

    func wait() async -> TrialExit {
        let logs = Task { await followLog() }
        let exit = await withTaskCancellationHandler {
            await watchStatus()
        } onCancel: {
            logs.cancel()
        }
        lock.withLock { outcome = exit }
        await logs.value
        return exit
    }

    /// Deletes the finished Pod or Job (a stopped one is already being deleted), unless the template retains it.
    func release() async {
        let deleted = lock.withLock { terminating }
        if !target.retain && !deleted { await delete(grace: nil) }
    }

    func terminate(grace: Duration) async {
        lock.withLock { terminating = true }
        await delete(grace: grace)
    }

    private func delete(grace: Duration?) async {
        var query = [("propagationPolicy", "Foreground")]
        if let grace { query.append(("gracePeriodSeconds", "\(max(0, grace.components.seconds))")) }
        _ = try? await client.request("DELETE", target.objectPath, query: query)
    }

    // MARK: Status

    /// Watches the trial's pods (by label) until the trial ends.
    private func watchStatus() async -> TrialExit {
        var failures = 0
        while true {
            if Task.isCancelled { return .lost }
            do {
                let list = try await client.request("GET", KubePath.pods(target.namespace),
                                                     query: [("labelSelector", TrialManifest.selector(trial: target.trial))])
                failures = 0
                let pods = (list["items"] as? [JSONObject]) ?? []
                if let exit = try await decide(pods: pods) { return exit }
                let resourceVersion = (list["metadata"] as? JSONObject)?["resourceVersion"] as? String ?? ""
                if let exit = try await watch(from: resourceVersion, pods: pods) { return exit }
            } catch let error as KubeAPIError where !error.isTransient && error.status != 410 {
                return .failed(reason: "KubernetesAPIError", message: "following \(target.description) failed: \(error)", exitCode: nil)
            } catch {
                // The API is unreachable for now (retries already spent): keep trying for about ten minutes.
                failures += 1
                if failures > 60 {
                    return .failed(reason: "KubernetesAPIError", message: "lost the Kubernetes API while following \(target.description): \(error)",
                                   exitCode: nil)
                }
                try? await Task.sleep(for: .seconds(10))
            }
        }
    }

    /// One watch from `resourceVersion`; returns the trial's end if it came, `nil` to relist
    /// (the watch timed out, or expired with 410 Gone).
    private func watch(from resourceVersion: String, pods: [JSONObject]) async throws -> TrialExit? {
        let events = EventBox(pods: pods)
        let started = lock.withLock { !startedPods.isEmpty }
        let seconds = started ? 60 : Int(max(1, min(10, pendingTimeout)))
        let cancel = CancelFlagHandle()
        try await client.stream(KubePath.pods(target.namespace), query: [
            ("labelSelector", TrialManifest.selector(trial: target.trial)), ("watch", "true"),
            ("resourceVersion", resourceVersion), ("timeoutSeconds", "\(seconds)"), ("allowWatchBookmarks", "false"),
        ], cancel: cancel) { line in
            guard let event = try? JSONSerialization.jsonObject(with: line) as? JSONObject,
                  let type = event["type"] as? String, let object = event["object"] as? JSONObject else { return }
            if events.add(type: type, object: object) { cancel.cancel() }
        }
        if events.expired { return nil }
        return try await decide(pods: events.pods, deleted: events.deleted)
    }

    /// The trial's end, if the pods (and the Job) say it ended.
    private func decide(pods: [JSONObject], deleted: Bool = false) async throws -> TrialExit? {
        let newest = pods.max { creation($0) < creation($1) }
        noteStarted(pods)
        let terminating = lock.withLock { self.terminating }
        switch target.kind {
        case .pod:
            guard let pod = newest else {
                return .failed(reason: "Deleted",
                               message: terminating ? "\(target.description) was deleted" : "\(target.description) was deleted before it finished",
                               exitCode: nil)
            }
            let exit = podExit(pod)
            if (pod["metadata"] as? JSONObject)?["deletionTimestamp"] != nil, exit != .exited(0), exit != nil || deleted || terminating {
                // Deleted before it finished: by knob (a stop), or by someone else (an eviction, kubectl delete).
                return .failed(reason: "Deleted", message: terminating ? "\(target.description) was deleted"
                                   : "\(target.description) was deleted before it finished", exitCode: exit?.code)
            }
            if let exit { return exit }
            return pendingFailure(pod)
        case .job:
            if let pod = newest, let exit = podExit(pod), exit == .exited(0) { return exit }
            let job: JSONObject
            do {
                job = try await client.request("GET", target.objectPath)
            } catch let error as KubeAPIError where error.status == 404 {
                return .failed(reason: "Deleted", message: terminating ? "\(target.description) was deleted"
                                   : "\(target.description) was deleted before it finished", exitCode: nil)
            }
            if let exit = jobExit(job, newest: newest) { return exit }
            return newest.flatMap(pendingFailure)
        }
    }

    private func creation(_ pod: JSONObject) -> String {
        (pod["metadata"] as? JSONObject)?["creationTimestamp"] as? String ?? ""
    }

    /// Remembers which pods have a log to read: those whose primary container started, in the
    /// order they were created (a pod that succeeded last among pods of the same second).
    private func noteStarted(_ pods: [JSONObject]) {
        let ordered = pods.sorted {
            (creation($0), phase($0) == "Succeeded" ? 1 : 0, name($0)) < (creation($1), phase($1) == "Succeeded" ? 1 : 0, name($1))
        }
        lock.withLock {
            for pod in ordered {
                guard let state = primaryState(pod), state["running"] != nil || state["terminated"] != nil else { continue }
                if !startedPods.contains(name(pod)) { startedPods.append(name(pod)) }
                if state["terminated"] != nil { endedPods.insert(name(pod)) }
            }
        }
    }

    private func name(_ pod: JSONObject) -> String { (pod["metadata"] as? JSONObject)?["name"] as? String ?? "" }
    private func phase(_ pod: JSONObject) -> String { (pod["status"] as? JSONObject)?["phase"] as? String ?? "" }

    private func primaryState(_ pod: JSONObject) -> JSONObject? {
        let statuses = ((pod["status"] as? JSONObject)?["containerStatuses"] as? [JSONObject]) ?? []
        return statuses.first { $0["name"] as? String == target.container }?["state"] as? JSONObject
    }

    /// How the pod's primary container ended, if it did.
    private func podExit(_ pod: JSONObject) -> TrialExit? {
        let status = pod["status"] as? JSONObject ?? [:]
        let podName = (pod["metadata"] as? JSONObject)?["name"] as? String ?? target.name
        if let terminated = primaryState(pod)?["terminated"] as? JSONObject {
            let code = Int32(truncatingIfNeeded: terminated["exitCode"] as? Int ?? -1)
            let reason = terminated["reason"] as? String
            switch reason {
            case nil, "Completed", "Error":
                return .exited(code)
            case "OOMKilled":
                return .failed(reason: "OOMKilled", message: "container \(target.container) of pod \(podName) ran out of memory and was killed "
                               + "(OOMKilled, exit code \(code)); raise its resources.limits.memory", exitCode: code)
            case let reason?:
                let said = (terminated["message"] as? String).map { ": \($0)" } ?? ""
                return .failed(reason: reason, message: "container \(target.container) of pod \(podName) ended with \(reason) (exit code \(code))\(said)",
                               exitCode: code)
            }
        }
        if status["phase"] as? String == "Failed" {
            let reason = status["reason"] as? String ?? "PodFailed"
            return .failed(reason: reason, message: "pod \(podName) failed: \(status["message"] as? String ?? reason)", exitCode: nil)
        }
        return nil
    }

    /// A pod that has not started within `pendingTimeout` (or cannot start at all) fails its trial with the reason.
    private func pendingFailure(_ pod: JSONObject) -> TrialExit? {
        let status = pod["status"] as? JSONObject ?? [:]
        guard status["phase"] as? String == "Pending" || status["phase"] == nil else { return nil }
        let podName = (pod["metadata"] as? JSONObject)?["name"] as? String ?? target.name
        var reason = "Pending"
        var detail = "it is still Pending"
        if let waiting = primaryState(pod)?["waiting"] as? JSONObject, let why = waiting["reason"] as? String {
            reason = why
            detail = "\(why)\((waiting["message"] as? String).map { ": \($0)" } ?? "")"
            if ["InvalidImageName", "ErrImageNeverPull"].contains(why) {
                return .failed(reason: why, message: "pod \(podName) cannot start: \(detail)", exitCode: nil)
            }
        } else if let unscheduled = ((status["conditions"] as? [JSONObject]) ?? []).first(where: {
            $0["type"] as? String == "PodScheduled" && $0["status"] as? String == "False"
        }) {
            reason = unscheduled["reason"] as? String ?? "Unschedulable"
            detail = "\(reason)\((unscheduled["message"] as? String).map { ": \($0)" } ?? "")"
        }
        guard let created = parseKubeTime(creation(pod)), Date().timeIntervalSince(created) > pendingTimeout else { return nil }
        return .failed(reason: reason, message: "pod \(podName) did not start within \(formatSeconds(.milliseconds(Int64(pendingTimeout * 1000)))): \(detail)", exitCode: nil)
    }

    /// How a Job ended, from its conditions (and its newest pod's container).
    private func jobExit(_ job: JSONObject, newest: JSONObject?) -> TrialExit? {
        let conditions = ((job["status"] as? JSONObject)?["conditions"] as? [JSONObject]) ?? []
        func holds(_ type: String) -> JSONObject? {
            conditions.first { $0["type"] as? String == type && $0["status"] as? String == "True" }
        }
        if holds("Complete") != nil { return .exited(0) }
        guard let failed = holds("Failed") else { return nil }
        let reason = failed["reason"] as? String ?? "JobFailed"
        if reason == "BackoffLimitExceeded", let pod = newest, let exit = podExit(pod) { return exit }
        return .failed(reason: reason, message: "\(target.description) failed: \(failed["message"] as? String ?? reason)", exitCode: nil)
    }

    // MARK: Log

    /// Streams the primary container's log into the trial's log file until the trial has ended and
    /// the log is read to its end: each started pod in turn (a Job's retries), each read to its
    /// end once its container has ended.
    private func followLog() async {
        let writer = LogWriter(logPath: target.logPath)
        while !Task.isCancelled {
            let (pods, ended, trialEnded) = lock.withLock { (startedPods, endedPods, outcome != nil) }
            guard let pod = pods.first(where: { !writer.isDone($0) }) else {
                if trialEnded { return }
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            writer.switchTo(pod: pod)
            // A container that ended has its whole log there: read it to the end, then move on.
            let toTheEnd = ended.contains(pod) || trialEnded
            var query = [("container", target.container), ("timestamps", "true")]
            if !toTheEnd { query.append(("follow", "true")) }
            if let since = writer.cursor.time { query.append(("sinceTime", since.sinceTimeText)) }
            do {
                try await client.stream(KubePath.log(target.namespace, pod), query: query, cancel: CancelFlagHandle()) { line in
                    writer.write(line)
                }
                if toTheEnd { writer.finish(pod: pod) }
            } catch let error as KubeAPIError where error.status == 404 {
                // The pod is gone, and its log with it.
                writer.finish(pod: pod)
            } catch {
                // A dropped stream: resume from the last line written.
            }
            if !toTheEnd { try? await Task.sleep(for: .milliseconds(300)) }
        }
    }
}

/// Watch events as they arrive, kept for `decide`.
private final class EventBox: @unchecked Sendable {
    private let lock = NSLock()
    private var byName: [String: JSONObject] = [:]
    private var order: [String] = []
    private(set) var expired = false
    private(set) var deleted = false

    init(pods: [JSONObject]) {
        for pod in pods { _ = add(type: "ADDED", object: pod) }
    }

    /// Records one event; true when the watch should stop (it expired, or a pod ended or went).
    func add(type: String, object: JSONObject) -> Bool {
        lock.withLock {
            if type == "ERROR" {
                expired = true
                return true
            }
            guard let name = (object["metadata"] as? JSONObject)?["name"] as? String else { return false }
            if type == "DELETED" {
                byName.removeValue(forKey: name)
                order.removeAll { $0 == name }
                deleted = true
                return true
            }
            if byName[name] == nil { order.append(name) }
            byName[name] = object
            let status = object["status"] as? JSONObject ?? [:]
            let phase = status["phase"] as? String
            let terminated = ((status["containerStatuses"] as? [JSONObject]) ?? []).contains {
                (($0["state"] as? JSONObject)?["terminated"]) != nil
            }
            let running = ((status["containerStatuses"] as? [JSONObject]) ?? []).contains {
                (($0["state"] as? JSONObject)?["running"]) != nil
            }
            // Stop to re-decide when something changed that matters: a container started or ended.
            if running, !sawRunning.contains(name) {
                sawRunning.insert(name)
                return true
            }
            return phase == "Succeeded" || phase == "Failed" || terminated
        }
    }

    private var sawRunning: Set<String> = []

    var pods: [JSONObject] { lock.withLock { order.compactMap { byName[$0] } } }
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

    init(logPath: String) {
        self.logPath = logPath
        cursor = (FileManager.default.contents(atPath: logPath + ".cursor"))
            .flatMap { try? JSONDecoder().decode(Cursor.self, from: $0) } ?? Cursor()
    }

    /// Starts a stream of `pod`'s log (a Job's next pod starts from its beginning).
    func switchTo(pod: String) {
        if cursor.pod != pod { cursor = Cursor(pod: pod, done: cursor.done) }
        skip = cursor.count
    }

    func isDone(_ pod: String) -> Bool { cursor.done.contains(pod) }

    /// Marks `pod`'s log as read to its end.
    func finish(pod: String) {
        guard !cursor.done.contains(pod) else { return }
        cursor.done.append(pod)
        save()
    }

    private func save() {
        if let data = try? JSONEncoder().encode(cursor) { try? data.write(to: URL(fileURLWithPath: logPath + ".cursor"), options: .atomic) }
    }

    func write(_ line: Data) {
        guard let space = line.firstIndex(of: UInt8(ascii: " ")), let time = KubeTime.parse(String(decoding: line[..<space], as: UTF8.self)) else {
            append(line)
            return
        }
        if let last = cursor.time {
            if time < last { return }
            if time == last, skip > 0 {
                skip -= 1
                return
            }
        }
        append(line[line.index(after: space)...])
        if time == cursor.time { cursor.count += 1 } else { cursor.time = time; cursor.count = 1 }
        skip = 0
        save()
    }

    private func append(_ text: Data) {
        guard let handle = FileHandle(forWritingAtPath: logPath) ?? {
            FileManager.default.createFile(atPath: logPath, contents: nil)
            return FileHandle(forWritingAtPath: logPath)
        }() else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        var data = Data(text)
        data.append(UInt8(ascii: "\n"))
        try? handle.write(contentsOf: data)
    }
}
