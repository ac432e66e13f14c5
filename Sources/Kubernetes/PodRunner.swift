import Foundation
import Knob

/// Runs each trial as a Kubernetes object of any namespaced kind the cluster serves (a Pod, a Job, a
/// PyTorchJob, an Argo Workflow…), talking to the API directly: creates the object, streams the
/// primary container's log into the trial's log file (where the scraper reads it), ends the trial from
/// the object's conditions (a Pod's or a Job's from its container and its own conditions), and deletes
/// the object afterwards, with its pods, unless the template says `retain: true`.
public final class PodRunner: TrialRunner, @unchecked Sendable {
    public let options: KubernetesOptions
    /// How long a pod may stay unstarted (`ImagePullBackOff`, `Unschedulable`…) before its trial fails.
    public let pendingTimeout: Double
    private let environment: [String: String]
    private let lock = NSLock()
    private var client: KubeClient?
    /// The kinds discovery found, by apiVersion and kind.
    private var resources: [String: KubeResource] = [:]

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

    /// Where the kind of `manifest` lives in the API, from discovery (asked once per kind).
    func resource(for manifest: SpecValue, client: KubeClient) async throws -> KubeResource {
        let apiVersion = manifest["apiVersion"]?.scalarText ?? "", kind = manifest["kind"]?.scalarText ?? ""
        let key = "\(apiVersion) \(kind)"
        if let known = lock.withLock({ resources[key] }) { return known }
        let found = try await client.resource(apiVersion: apiVersion, kind: kind)
        lock.withLock { resources[key] = found }
        return found
    }

    /// A template with a trialSpec (inline or in a ConfigMap) and no command runs on the cluster.
    public func runs(_ spec: ExperimentSpec) -> Bool { spec.runsOnKubernetes }

    /// A File or TensorFlowEvent collector reads its files in a sidecar of the trial's pod.
    public var collectorFilesAreLocal: Bool { false }

    public func start(_ launch: TrialLaunch) async throws -> any RunningTrial {
        try await start(launch, kubernetes: KubernetesLaunch(launch))
    }

    /// Starts the trial's object as `kubernetes` describes it.
    public func start(_ launch: TrialLaunch, kubernetes: KubernetesLaunch?) async throws -> any RunningTrial {
        let client: KubeClient
        let manifest: TrialManifest
        do {
            guard let kubernetes else { throw ManifestError("the trial template has no trialSpec") }
            client = try kubeClient()
            let resource = try await self.resource(for: kubernetes.manifest, client: client)
            manifest = try TrialManifest(launch, kubernetes: kubernetes, defaultNamespace: client.access.namespace,
                                         artifactsClaim: options.artifactsClaim, options: options, resource: resource)
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
                throw RunnerError.startFailed("a \(manifest.kind) named \(manifest.name) already exists in namespace \(manifest.namespace), "
                                              + "and reading it to see whose it is failed: \(error)")
            }
            let labels = (existing["metadata"] as? JSONObject)?["labels"] as? JSONObject
            guard labels?["knob.dev/trial"] as? String == launch.trialName,
                  labels?["knob.dev/experiment"] as? String == launch.experimentName,
                  labels?["knob.dev/trial-uid"] as? String ?? "" == launch.trialUID else {
                throw RunnerError.startFailed(
                    "a \(manifest.kind) named \(manifest.name) already exists in namespace \(manifest.namespace) and is not this trial's; "
                        + "delete it (kubectl delete \(manifest.resource.kubectlName) -n \(manifest.namespace) \(manifest.name)) and resume the experiment")
            }
        } catch let error as KubeAPIError {
            throw RunnerError.startFailed("cannot create \(manifest.kind) \(manifest.name) in namespace \(manifest.namespace) "
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
                    + "configuration to follow it, or remove it with \(target.kubectlDelete)",
                exitCode: nil))
        }
    }

    /// A trial whose start was not recorded: its object, if it exists, is found by its labels.
    public func find(_ launch: TrialLaunch) async -> (any RunningTrial)? {
        await find(launch, kubernetes: KubernetesLaunch(launch))
    }

    public func find(_ launch: TrialLaunch, kubernetes: KubernetesLaunch?) async -> (any RunningTrial)? {
        guard let client = try? kubeClient(), let kubernetes,
              let resource = try? await resource(for: kubernetes.manifest, client: client),
              let manifest = try? TrialManifest(launch, kubernetes: kubernetes, defaultNamespace: client.access.namespace,
                                                artifactsClaim: options.artifactsClaim, options: options, resource: resource),
              let list = try? await client.request("GET", manifest.collectionPath, query: [
                  ("labelSelector", TrialManifest.selector(trial: launch.trialName, uid: launch.trialUID))]),
              let items = list["items"] as? [JSONObject], !items.isEmpty else { return nil }
        return PodTrial(client: client, target: PodTrial.Target(manifest, launch: launch), pendingTimeout: pendingTimeout)
    }
}

extension PodRunner {
    /// Deletes the objects of ended trials that are still there (unless retained): one list
    /// per namespace and kind, by the experiment's label; an object is a trial's only when its
    /// name, trial label and trial-uid label all match the recorded handle.
    public func sweep(experiment: String, ended handles: [[String: String]]) async -> Int {
        let targets = handles.compactMap { $0["runner"] == "kubernetes" ? PodTrial.Target(handle: $0) : nil }.filter { !$0.retain }
        guard !targets.isEmpty, let client = try? kubeClient() else { return 0 }
        var removed = 0
        for (collection, group) in Dictionary(grouping: targets, by: { $0.resource.collection($0.namespace) }) {
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

extension PodRunner {
    /// At an experiment's start: reads a template kept in a ConfigMap (validated as an inline one would be),
    /// and checks that the cluster serves the trials' kind. A cluster that cannot be asked now is no refusal:
    /// each trial's start asks again.
    public func prepare(_ spec: ExperimentSpec, specText: String) async throws -> ExperimentSpec {
        guard spec.runsOnKubernetes else { return spec }
        var spec = spec
        func refuse(_ message: String) -> KnobError { .refusedAtStart(name: spec.name, message: message) }
        if let source = spec.trialTemplate.configMap {
            let client: KubeClient
            do {
                client = try kubeClient()
            } catch {
                throw refuse("spec.trialTemplate.configMap: the trial template is in \(source.description), and knob has no cluster to read "
                             + "it from: \(error)")
            }
            let template = try await Self.template(from: source, client: client, refuse: refuse)
            do {
                spec.trialTemplate = try ExperimentSpec.parse(specText, templateFromConfigMap: template).trialTemplate
            } catch {
                throw refuse("the trial template in \(source.description) does not fit the spec:\n"
                             + error.problems.map { "  \($0)" }.joined(separator: "\n"))
            }
        }
        if let manifest = spec.trialTemplate.trialSpec, let client = try? kubeClient() {
            do {
                _ = try await resource(for: manifest, client: client)
            } catch let error as KindNotServed {
                throw refuse("spec.trialTemplate.trialSpec: \(error)")
            } catch {}
        }
        return spec
    }

    /// The trialSpec kept under `source.templatePath` of a ConfigMap.
    static func template(from source: TrialTemplateSpec.ConfigMapSource, client: KubeClient,
                         refuse: (String) -> KnobError) async throws -> SpecValue {
        let configMap: JSONObject
        do {
            configMap = try await client.request("GET", "/api/v1/namespaces/\(source.configMapNamespace)/configmaps/\(source.configMapName)")
        } catch let error as KubeAPIError where error.status == 404 {
            throw refuse("spec.trialTemplate.configMap: there is no ConfigMap \(source.configMapName) in namespace \(source.configMapNamespace) "
                         + "(\(client.access.server)); create it: kubectl create configmap \(source.configMapName) -n \(source.configMapNamespace) "
                         + "--from-file=\(source.templatePath)=TEMPLATE.yaml")
        } catch let error as KubeAPIError where !error.isTransient {
            throw refuse("spec.trialTemplate.configMap: cannot read \(source.description): \(error)")
        }
        let data = configMap["data"] as? [String: Any] ?? [:]
        guard let text = data[source.templatePath] as? String else {
            throw refuse("spec.trialTemplate.configMap.templatePath: \(source.description) has no key \(source.templatePath) (its keys: "
                         + (data.keys.sorted().joined(separator: ", ").nilIfEmpty ?? "none") + ")")
        }
        do {
            return try SpecValue.parse(text)
        } catch {
            throw refuse("spec.trialTemplate.configMap: the template in \(source.description) is not YAML knob reads: \(error)")
        }
    }
}

private extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
