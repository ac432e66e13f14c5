import Foundation
import Knob

/// Runs each trial as a Pod or a `batch/v1` Job on a Kubernetes cluster, talking to the API
/// directly: creates the object, streams the primary container's log into the trial's log file
/// (where the scraper reads it), ends the trial from the container's termination or the Job's
/// conditions, and deletes the object afterwards unless the template says `retain: true`.
public final class PodRunner: TrialRunner, @unchecked Sendable {
    public let options: KubernetesOptions
    /// How long a pod may stay unstarted (`ImagePullBackOff`, `Unschedulable`…) before its trial fails.
    public let pendingTimeout: Double
    private let environment: [String: String]
    private let lock = NSLock()
    private var client: KubeClient?

    public init(options: KubernetesOptions = KubernetesOptions(), pendingTimeout: Double = 300,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.options = options
        self.pendingTimeout = pendingTimeout
        self.environment = environment
    }

    /// The API client, configured on first use (a configuration error is reported each time, so
    /// fixing the kubeconfig needs no restart).
    func kubeClient() throws -> KubeClient {
        if let client = lock.withLock({ client }) { return client }
        let made = KubeClient(try ClusterAccess.resolve(options, environment: environment))
        lock.withLock { client = made }
        return made
    }

    public func start(_ launch: TrialLaunch) async throws -> any RunningTrial {
        let client: KubeClient
        let manifest: TrialManifest
        do {
            client = try kubeClient()
            manifest = try TrialManifest(launch, defaultNamespace: client.access.namespace, artifactsClaim: options.artifactsClaim, options: options)
        } catch {
            throw RunnerError.startFailed("\(error)")
        }
        do {
            try await client.request("POST", manifest.collectionPath, body: manifest.object)
        } catch let error as KubeAPIError where error.status == 409 {
            // Created before (a retried request, or a starter that died before recording it): ours if the labels say so.
            let existing: JSONObject
            do {
                existing = try await client.request("GET", manifest.objectPath)
            } catch {
                throw RunnerError.startFailed("a \(manifest.kind.rawValue) named \(manifest.name) already exists in namespace \(manifest.namespace), "
                                              + "and reading it to see whose it is failed: \(error)")
            }
            let labels = (existing["metadata"] as? JSONObject)?["labels"] as? JSONObject
            guard labels?["knob.dev/trial"] as? String == launch.trialName,
                  labels?["knob.dev/experiment"] as? String == launch.experimentName,
                  labels?["knob.dev/trial-uid"] as? String ?? "" == launch.trialUID else {
                throw RunnerError.startFailed(
                    "a \(manifest.kind.rawValue) named \(manifest.name) already exists in namespace \(manifest.namespace) and is not this trial's; "
                        + "delete it (kubectl delete \(manifest.kind.rawValue.lowercased()) -n \(manifest.namespace) \(manifest.name)) and resume the experiment")
            }
        } catch let error as KubeAPIError {
            throw RunnerError.startFailed("cannot create \(manifest.kind.rawValue) \(manifest.name) in namespace \(manifest.namespace) "
                                          + "(\(client.access.origin), \(client.access.server)): \(error)")
        }
        try? FileManager.default.createDirectory(atPath: (launch.logPath as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: launch.logPath) {
            _ = FileManager.default.createFile(atPath: launch.logPath, contents: nil)
        }
        return PodTrial(client: client, target: PodTrial.Target(manifest, launch: launch), pendingTimeout: pendingTimeout)
    }

    public func adopt(handle: [String: String]) async -> (any RunningTrial)? {
        guard handle["runner"] == "kubernetes", let target = PodTrial.Target(handle: handle) else { return nil }
        do {
            return PodTrial(client: try kubeClient(), target: target, pendingTimeout: pendingTimeout)
        } catch {
            // Not "lost": the pod may well be running; say why it cannot be followed, and what to do.
            return UnfollowableTrial(handle: handle, exit: .failed(
                reason: "KubernetesConfig",
                message: "cannot follow \(target.description) again: \(error). It may still be running: start knobd with the cluster's "
                    + "configuration to follow it, or remove it with kubectl delete \(target.kind.rawValue.lowercased()) -n \(target.namespace) \(target.name)",
                exitCode: nil))
        }
    }

    /// A trial whose start was not recorded: its object, if it exists, is found by its labels.
    public func find(_ launch: TrialLaunch) async -> (any RunningTrial)? {
        guard let client = try? kubeClient(), let manifest = try? TrialManifest(launch, defaultNamespace: client.access.namespace, artifactsClaim: options.artifactsClaim, options: options),
              let list = try? await client.request("GET", manifest.collectionPath, query: [
                  ("labelSelector", TrialManifest.selector(trial: launch.trialName, uid: launch.trialUID))]),
              let items = list["items"] as? [JSONObject], !items.isEmpty else { return nil }
        return PodTrial(client: client, target: PodTrial.Target(manifest, launch: launch), pendingTimeout: pendingTimeout)
    }
}

extension PodRunner {
    /// Deletes the Pods and Jobs of ended trials that are still there (unless retained): one list
    /// per namespace and kind, by the experiment's label; an object is a trial's only when its
    /// name, trial label and trial-uid label all match the recorded handle.
    public func sweep(experiment: String, ended handles: [[String: String]]) async -> Int {
        let targets = handles.compactMap { $0["runner"] == "kubernetes" ? PodTrial.Target(handle: $0) : nil }.filter { !$0.retain }
        guard !targets.isEmpty, let client = try? kubeClient() else { return 0 }
        var removed = 0
        for (collection, group) in Dictionary(grouping: targets, by: { KubePath.collection($0.kind, $0.namespace) }) {
            guard let list = try? await client.request("GET", collection, query: [("labelSelector", "knob.dev/experiment=\(experiment)")]) else { continue }
            for item in (list["items"] as? [JSONObject]) ?? [] {
                let metadata = item["metadata"] as? JSONObject
                let labels = metadata?["labels"] as? JSONObject
                guard let target = group.first(where: { target in
                    metadata?["name"] as? String == target.name && labels?["knob.dev/trial"] as? String == target.trial
                        && labels?["knob.dev/trial-uid"] as? String ?? "" == target.uid
                }) else { continue }
                await PodTrial(client: client, target: target, pendingTimeout: pendingTimeout).release()
                removed += 1
            }
        }
        return removed
    }
}

/// A trial knob cannot follow (no cluster configuration): it ends at once, saying why.
struct UnfollowableTrial: RunningTrial {
    let handle: [String: String]
    let exit: TrialExit

    func wait() async -> TrialExit { exit }
    func terminate(grace: Duration) async {}
}
