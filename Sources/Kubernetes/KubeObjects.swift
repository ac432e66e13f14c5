import Foundation

/// The parts of a Pod that decide a trial, as the API gives them (every field optional: what is not there is not
/// known yet).
struct KubePod: Decodable, Sendable, Equatable {
    struct Metadata: Decodable, Sendable, Equatable {
        var name: String?
        var creationTimestamp: String?
        var deletionTimestamp: String?
        var deletionGracePeriodSeconds: Double?
        var labels: [String: String]?
        var ownerReferences: [OwnerReference]?
    }

    struct OwnerReference: Decodable, Sendable, Equatable {
        var uid: String?
    }

    struct ContainerState: Decodable, Sendable, Equatable {
        struct Running: Decodable, Sendable, Equatable {
            var startedAt: String?
        }

        struct Waiting: Decodable, Sendable, Equatable {
            var reason: String?
            var message: String?
        }

        struct Terminated: Decodable, Sendable, Equatable {
            var exitCode: Int?
            var reason: String?
            var message: String?
        }

        var running: Running?
        var waiting: Waiting?
        var terminated: Terminated?
    }

    struct ContainerStatus: Decodable, Sendable, Equatable {
        var name: String
        var state: ContainerState?
        var lastState: ContainerState?

        /// The container runs, or ran: it has a log.
        var started: Bool { state?.running != nil || state?.terminated != nil || lastState?.terminated != nil }
    }

    struct Status: Decodable, Sendable, Equatable {
        var phase: String?
        var reason: String?
        var message: String?
        var conditions: [KubeCondition]?
        var containerStatuses: [ContainerStatus]?
        var initContainerStatuses: [ContainerStatus]?
    }

    var metadata: Metadata?
    var status: Status?

    var name: String { metadata?.name ?? "" }
    var phase: String { status?.phase ?? "" }
    var labels: [String: String] { metadata?.labels ?? [:] }
    var ended: Bool { phase == "Succeeded" || phase == "Failed" }
    var creation: String { metadata?.creationTimestamp ?? "" }

    /// A container's status, among the pod's containers and its init containers (a sidecar's).
    func containerStatus(_ container: String) -> ContainerStatus? {
        ((status?.containerStatuses ?? []) + (status?.initContainerStatuses ?? [])).first { $0.name == container }
    }

    /// The pod's `PodScheduled` condition when it is False (the scheduler found no node).
    var unscheduled: KubeCondition? {
        status?.conditions?.first { $0.type == "PodScheduled" && $0.status == "False" }
    }

    /// Creation order of a Job's pods. Among pods of the same second (creation times are whole seconds), one
    /// that failed came before the one still active, and that one before one that succeeded: a Job runs one at a time.
    var order: (String, Int, String) {
        let rank = switch phase {
        case "Failed": 0
        case "Succeeded": 2
        default: 1
        }
        return (creation, rank, name)
    }
}

/// A condition of an object's status (a Pod's, a Job's).
struct KubeCondition: Decodable, Sendable, Equatable {
    var type: String?
    var status: String?
    var reason: String?
    var message: String?
}

/// The parts of a `batch/v1` Job that decide its trial.
struct KubeJob: Decodable, Sendable, Equatable {
    struct Metadata: Decodable, Sendable, Equatable {
        var creationTimestamp: String?
    }

    struct Status: Decodable, Sendable, Equatable {
        var conditions: [KubeCondition]?
    }

    var metadata: Metadata?
    var status: Status?

    /// The condition of `type` that holds.
    func holds(_ type: String) -> KubeCondition? {
        status?.conditions?.first { $0.type == type && $0.status == "True" }
    }
}

extension KubePod {
    /// The pods of a list the API answered (those whose shape is not a pod's are left out).
    static func items(of list: JSONObject) -> [KubePod] {
        ((list["items"] as? [Any]) ?? []).compactMap { KubePod(json: $0) }
    }
}

extension Decodable {
    /// The value of an object as `JSONSerialization` gives it; `nil` when its shape is not this type's.
    init?(json: Any) {
        guard JSONSerialization.isValidJSONObject(json), let data = try? JSONSerialization.data(withJSONObject: json),
              let value = try? JSONDecoder().decode(Self.self, from: data) else { return nil }
        self = value
    }
}
