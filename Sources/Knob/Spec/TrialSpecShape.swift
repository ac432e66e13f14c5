/// What knob needs of a trialSpec before it can run it, checked with the rest of the spec so that
/// `knob validate`, `knob run`, `knob create` and the API refuse the same specs: a kind knob runs,
/// containers, the primary container among them, and a restart policy that lets a trial end.
public enum TrialSpecShape {
    /// The kinds knob creates, as (apiVersion, kind), and where their pod spec is.
    static let kinds: [(apiVersion: String, kind: String, podSpec: [String])] = [
        ("v1", "Pod", ["spec"]),
        ("batch/v1", "Job", ["spec", "template", "spec"]),
    ]

    public struct Problem: Sendable, Hashable {
        /// Below `spec.trialTemplate`, e.g. `trialSpec.spec.template.spec.containers`.
        public var path: String
        public var message: String
    }

    /// The manifest's problems; none when knob can run it.
    public static func problems(_ manifest: SpecValue, primaryContainerName: String?) -> [Problem] {
        let apiVersion = manifest["apiVersion"]?.scalarText ?? ""
        let kind = manifest["kind"]?.scalarText ?? ""
        guard let known = kinds.first(where: { $0.apiVersion == apiVersion && $0.kind == kind }) else {
            let given = kind.isEmpty ? "an object with no kind" : "\(apiVersion.isEmpty ? "" : "\(apiVersion) ")\(kind)"
            return [Problem(path: "trialSpec.kind", message: "knob runs a v1 Pod or a batch/v1 Job, not \(given)")]
        }
        var podSpec: SpecValue? = manifest
        for key in known.podSpec { podSpec = podSpec?[key] }
        let path = "trialSpec." + known.podSpec.joined(separator: ".")
        guard case .sequence(let containers, _)? = podSpec?["containers"], !containers.isEmpty else {
            return [Problem(path: "\(path).containers", message: "the trial needs at least one container")]
        }
        var problems: [Problem] = []
        let names = containers.map { $0["name"]?.scalarText }
        for (i, name) in names.enumerated() where name?.isEmpty ?? true {
            problems.append(Problem(path: "\(path).containers[\(i)].name", message: "is required"))
        }
        if let wanted = primaryContainerName, !names.contains(wanted) {
            problems.append(Problem(path: "primaryContainerName",
                                    message: "\"\(wanted)\" is not a container of the trialSpec (its containers: \(names.compactMap { $0 }.joined(separator: ", ")))"))
        }
        if podSpec?["restartPolicy"]?.scalarText == "Always" {
            problems.append(Problem(path: "\(path).restartPolicy", message: "Always would run the trial again each time it ends; use Never (or OnFailure)"))
        }
        return problems
    }

    /// Katib's trial metadata that `${trialSpec.…}` references read, from the manifest as written:
    /// its kind, apiVersion, namespace (the experiment's when it names none), labels and annotations.
    public struct Metadata: Sendable, Hashable {
        public var kind: String
        public var apiVersion: String
        public var namespace: String?
        public var labels: [String: String]
        public var annotations: [String: String]

        public init(_ manifest: SpecValue?, experimentNamespace: String?) {
            kind = manifest?["kind"]?.scalarText ?? ""
            apiVersion = manifest?["apiVersion"]?.scalarText ?? ""
            namespace = manifest?["metadata"]?["namespace"]?.scalarText ?? experimentNamespace
            labels = Self.strings(manifest?["metadata"]?["labels"])
            annotations = Self.strings(manifest?["metadata"]?["annotations"])
        }

        private static func strings(_ node: SpecValue?) -> [String: String] {
            guard case .mapping(let entries, _)? = node else { return [:] }
            var result: [String: String] = [:]
            for entry in entries { if let text = entry.value.scalarText { result[entry.key] = text } }
            return result
        }
    }
}

extension SpecValue {
    /// The text of a scalar; nil for anything else.
    public var scalarText: String? {
        if case .scalar(let text, _, _) = self { return text }
        return nil
    }
}
