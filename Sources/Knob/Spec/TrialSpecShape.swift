/// What knob needs of a trialSpec before it can run it, checked with the rest of the spec so that
/// `knob validate`, `knob run`, `knob create` and the API refuse the same specs: a kind (any namespaced
/// kind the cluster serves), containers in its pod templates with the primary container among them,
/// conditions that say when a trial of that kind has ended (Katib's defaults for Job and the training
/// operator's kinds), and a restart policy that lets a Pod's or a Job's trial end.
public enum TrialSpecShape {
    public struct Problem: Sendable, Hashable {
        /// Below `spec.trialTemplate`, e.g. `trialSpec.spec.template.spec.containers`.
        public var path: String
        public var message: String
    }

    /// What Katib assumes for a kind when the template does not say: its success and failure conditions
    /// and the labels of its primary pods.
    public struct KindDefaults: Sendable, Hashable {
        public var successCondition: String
        public var failureCondition: String
        public var primaryPodLabels: [String: String]
    }

    /// Katib's defaults by kind: Job's conditions (`Complete`, `Failed`); the training operator's
    /// (`Succeeded`, `Failed`, and the master's pods); a TrainJob's (`Complete`, `Failed`, and node 0 of its JobSet).
    public static func defaults(kind: String) -> KindDefaults? {
        func conditions(_ success: String) -> (String, String) {
            (#"status.conditions.#(type=="\#(success)")#|#(status=="True")#"#, #"status.conditions.#(type=="Failed")#|#(status=="True")#"#)
        }
        switch kind {
        case "Job":
            let (success, failure) = conditions("Complete")
            return KindDefaults(successCondition: success, failureCondition: failure, primaryPodLabels: [:])
        case "TFJob", "PyTorchJob", "XGBoostJob", "MPIJob":
            let (success, failure) = conditions("Succeeded")
            return KindDefaults(successCondition: success, failureCondition: failure,
                                primaryPodLabels: ["training.kubeflow.org/job-role": "master"])
        case "TrainJob":
            let (success, failure) = conditions("Complete")
            return KindDefaults(successCondition: success, failureCondition: failure,
                                primaryPodLabels: ["jobset.sigs.k8s.io/replicatedjob-name": "node", "batch.kubernetes.io/job-completion-index": "0"])
        default:
            return nil
        }
    }

    /// The template's trial-end fields, with Katib's defaults for the kind where it gives none.
    public struct Ending: Sendable, Hashable {
        /// `nil` for a Pod, and for a Job whose template gives no conditions: knob follows their pods and containers.
        public var successCondition: String?
        public var failureCondition: String?
        public var primaryPodLabels: [String: String]

        public init(kind: String, successCondition: String?, failureCondition: String?, primaryPodLabels: [String: String]?) {
            let defaults = Self.nativeKinds.contains(kind) && successCondition == nil && failureCondition == nil ? nil : TrialSpecShape.defaults(kind: kind)
            self.successCondition = successCondition ?? defaults?.successCondition
            self.failureCondition = failureCondition ?? defaults?.failureCondition
            self.primaryPodLabels = (primaryPodLabels?.isEmpty ?? true) ? defaults?.primaryPodLabels ?? [:] : primaryPodLabels ?? [:]
        }

        /// Kinds whose end knob reads from their pods when the template gives no conditions.
        public static let nativeKinds: Set<String> = ["Pod", "Job"]
    }

    /// A step of a path into a manifest.
    public enum Step: Sendable, Hashable, CustomStringConvertible {
        case key(String)
        case index(Int)

        public var description: String {
            switch self {
            case .key(let key): key
            case .index(let index): "[\(index)]"
            }
        }
    }

    /// The manifest's pod templates: the object itself for a Pod, `spec.template` for a Job, each replica's
    /// `template` for a PyTorchJob…: every mapping whose `spec.containers` is a list, outermost first (a pod
    /// template holds no other).
    public static func podTemplates(in manifest: Any) -> [[Step]] {
        var found: [[Step]] = []
        func walk(_ value: Any, _ path: [Step]) {
            if let mapping = value as? [String: Any] {
                if (mapping["spec"] as? [String: Any])?["containers"] is [Any] {
                    found.append(path)
                    return
                }
                for key in mapping.keys.sorted() where key != "metadata" && key != "status" { walk(mapping[key]!, path + [.key(key)]) }
            } else if let items = value as? [Any] {
                for (i, item) in items.enumerated() { walk(item, path + [.index(i)]) }
            }
        }
        walk(manifest, [])
        return found
    }

    /// A path as the spec's problems print it: `spec.template.spec`, `spec.templates[0]`.
    public static func text(_ path: [Step]) -> String {
        var text = ""
        for step in path {
            if case .key = step, !text.isEmpty { text += "." }
            text += step.description
        }
        return text
    }

    /// The manifest's problems; none when knob can run it.
    public static func problems(_ manifest: SpecValue, primaryContainerName: String?, ending: Ending? = nil) -> [Problem] {
        let apiVersion = manifest["apiVersion"]?.scalarText ?? ""
        let kind = manifest["kind"]?.scalarText ?? ""
        var problems: [Problem] = []
        if kind.isEmpty {
            problems.append(Problem(path: "trialSpec.kind", message: "is required: the kind of object each trial creates (Job, PyTorchJob, Workflow…)"))
        }
        if apiVersion.isEmpty {
            problems.append(Problem(path: "trialSpec.apiVersion", message: "is required: the API group and version of the trial's kind (batch/v1, kubeflow.org/v1…)"))
        }
        if !problems.isEmpty { return problems }
        let given = "\(apiVersion) \(kind)"
        let ending = ending ?? Ending(kind: kind, successCondition: nil, failureCondition: nil, primaryPodLabels: nil)
        if kind == "Pod" && apiVersion != "v1" || kind == "Job" && apiVersion != "batch/v1" {
            problems.append(Problem(path: "trialSpec.apiVersion", message: "a \(kind) is \(kind == "Pod" ? "v1" : "batch/v1"), not \(apiVersion)"))
        }
        let templates = podTemplates(in: manifest.jsonObject)
        var names: [String] = []
        for template in templates {
            var podSpec: SpecValue? = manifest
            for step in template + [.key("spec")] {
                switch step {
                case .key(let key): podSpec = podSpec?[key]
                case .index(let index): podSpec = podSpec?.items.flatMap { index < $0.count ? $0[index] : nil }
                }
            }
            let path = "trialSpec." + text(template + [.key("spec")])
            guard case .sequence(let containers, _)? = podSpec?["containers"], !containers.isEmpty else {
                problems.append(Problem(path: "\(path).containers", message: "the trial needs at least one container"))
                continue
            }
            for (i, container) in containers.enumerated() {
                guard let name = container["name"]?.scalarText, !name.isEmpty else {
                    problems.append(Problem(path: "\(path).containers[\(i)].name", message: "is required"))
                    continue
                }
                if !names.contains(name) { names.append(name) }
            }
            if Ending.nativeKinds.contains(kind), podSpec?["restartPolicy"]?.scalarText == "Always" {
                problems.append(Problem(path: "\(path).restartPolicy", message: "Always would run the trial again each time it ends; use Never (or OnFailure)"))
            }
        }
        if Ending.nativeKinds.contains(kind), templates.isEmpty {
            let path = kind == "Pod" ? "trialSpec.spec.containers" : "trialSpec.spec.template.spec.containers"
            problems.append(Problem(path: path, message: "the trial needs at least one container"))
        }
        if let wanted = primaryContainerName, !templates.isEmpty, !names.isEmpty, !names.contains(wanted) {
            problems.append(Problem(path: "primaryContainerName",
                                    message: "\"\(wanted)\" is not a container of the trialSpec (its containers: \(names.joined(separator: ", ")))"))
        }
        if primaryContainerName == nil, templates.isEmpty, !Ending.nativeKinds.contains(kind) {
            problems.append(Problem(path: "primaryContainerName",
                                    message: "is required for \(given) trials: knob reads the log of that container in the trial's pods "
                                        + "(a \(kind)'s pods are made by its controller, from templates knob does not know)"))
        }
        if !Ending.nativeKinds.contains(kind), ending.successCondition == nil || ending.failureCondition == nil {
            let missing = [("successCondition", ending.successCondition), ("failureCondition", ending.failureCondition)].filter { $0.1 == nil }.map(\.0)
            let example = kind == "Workflow" ? #" (for an Argo Workflow: status.[@this].#(phase=="Succeeded")# and status.[@this].#(phase=="Failed")#)"# : ""
            problems.append(Problem(path: missing.count == 1 ? missing[0] : "successCondition",
                                    message: "\(missing.joined(separator: " and ")) \(missing.count == 1 ? "is" : "are") required for \(given) trials: GJSON paths over "
                                        + "the trial's object that holds when it has \(missing.count == 1 && missing[0] == "failureCondition" ? "failed" : "ended")\(example); "
                                        + "knob knows them for Job, TFJob, PyTorchJob, XGBoostJob, MPIJob and TrainJob"))
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
