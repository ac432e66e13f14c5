import Foundation
import Kubernetes

/// What `GET /v1/cluster` answers: whether knobd has a Kubernetes cluster for trials with a `trialSpec`,
/// and which. A client such as the Katib SDK's `tune()` reads it to build a Job trial or a local one.
struct ClusterView: Encodable {
    var configured: Bool
    /// The API server's address.
    var server: String?
    /// Where trials whose spec names no namespace go.
    var namespace: String?
    /// Where the configuration came from: `context "kind-dev" of /root/.kube/config`, `in-cluster service account`.
    var origin: String?
    /// Why there is none, and how to give knobd one.
    var problem: String?

    init(_ options: KubernetesOptions?) {
        guard let options else {
            configured = false
            problem = "this server only shows the store (knob dashboard); it runs no trials"
            return
        }
        do {
            let access = try ClusterAccess.resolve(options)
            configured = true
            server = access.server
            namespace = access.namespace
            origin = access.origin
        } catch {
            configured = false
            problem = String(describing: error)
        }
    }
}
