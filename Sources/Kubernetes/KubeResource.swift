import Foundation

/// Where a kind lives in the API: its group and version, and its resource's plural name
/// (`kubeflow.org/v1`, `PyTorchJob`, `pytorchjobs`).
public struct KubeResource: Sendable, Hashable, CustomStringConvertible {
    public var apiVersion: String
    public var kind: String
    public var plural: String

    public init(apiVersion: String, kind: String, plural: String) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.plural = plural
    }

    public static let pod = KubeResource(apiVersion: "v1", kind: "Pod", plural: "pods")
    public static let job = KubeResource(apiVersion: "batch/v1", kind: "Job", plural: "jobs")

    /// The kinds every cluster serves, known without asking.
    static func builtIn(apiVersion: String, kind: String) -> KubeResource? {
        [pod, job].first { $0.apiVersion == apiVersion && $0.kind == kind }
    }

    /// A guess for showing a manifest without a cluster (the plural is not part of what is created).
    static func guess(apiVersion: String, kind: String) -> KubeResource {
        builtIn(apiVersion: apiVersion, kind: kind) ?? KubeResource(apiVersion: apiVersion, kind: kind, plural: kind.lowercased() + "s")
    }

    public var description: String { "\(apiVersion) \(kind)" }

    /// `/api/v1` for the core group, `/apis/GROUP/VERSION` for the others.
    var groupVersionPath: String { apiVersion.contains("/") ? "/apis/\(apiVersion)" : "/api/\(apiVersion)" }
    var group: String { apiVersion.contains("/") ? String(apiVersion.split(separator: "/")[0]) : "" }

    func collection(_ namespace: String) -> String { "\(groupVersionPath)/namespaces/\(namespace)/\(plural)" }
    func object(_ namespace: String, _ name: String) -> String { "\(collection(namespace))/\(name)" }

    /// `kubectl delete` names a kind by its plural and group: `pytorchjobs.kubeflow.org`.
    var kubectlName: String { group.isEmpty || group == "batch" ? kind.lowercased() : "\(plural).\(group)" }
}

/// A trial's kind that the cluster does not serve (its CRD is not installed), or serves only cluster-wide.
public struct KindNotServed: Error, Sendable, CustomStringConvertible {
    public var apiVersion: String
    public var kind: String
    public var clusterScoped = false

    public var description: String {
        if clusterScoped {
            return "\(apiVersion) \(kind) is not a namespaced kind in this cluster: a trial's object must live in a namespace"
        }
        return "\(apiVersion) \(kind) is not served by this cluster: install \(Self.installHint(apiVersion))"
    }

    /// What serves a group, for the message.
    static func installHint(_ apiVersion: String) -> String {
        switch apiVersion.split(separator: "/").first.map(String.init) ?? "" {
        case "kubeflow.org": "the Kubeflow training operator"
        case "trainer.kubeflow.org": "Kubeflow Trainer"
        case "argoproj.io": "Argo Workflows"
        case "tekton.dev": "Tekton Pipelines"
        case "batch", "apps": "a cluster that serves it (check the apiVersion)"
        default: "the CustomResourceDefinition that defines it"
        }
    }
}

extension KubeClient {
    /// The resource of `apiVersion` `kind`, from API discovery (`/api/v1`, `/apis/GROUP/VERSION`). Throws
    /// `KindNotServed` when the cluster does not serve it in a namespace, other errors when the API cannot be asked.
    public func resource(apiVersion: String, kind: String) async throws -> KubeResource {
        if let known = KubeResource.builtIn(apiVersion: apiVersion, kind: kind) { return known }
        let base = KubeResource(apiVersion: apiVersion, kind: kind, plural: "")
        let list: JSONObject
        do {
            list = try await request("GET", base.groupVersionPath)
        } catch let error as KubeAPIError where error.status == 404 {
            throw KindNotServed(apiVersion: apiVersion, kind: kind)
        }
        let resources = (list["resources"] as? [JSONObject]) ?? []
        guard let found = resources.first(where: { $0["kind"] as? String == kind && !(($0["name"] as? String) ?? "/").contains("/") }),
              let plural = found["name"] as? String else {
            throw KindNotServed(apiVersion: apiVersion, kind: kind)
        }
        if found["namespaced"] as? Bool == false { throw KindNotServed(apiVersion: apiVersion, kind: kind, clusterScoped: true) }
        return KubeResource(apiVersion: apiVersion, kind: kind, plural: plural)
    }
}
