import Foundation
import KnobAlgorithms

/// Substitutes `${trialParameters.NAME}` (and Katib's `${trialSpec.Name}` metadata references)
/// in a trial template.
public enum TemplateRenderer {
    static let prefix = "${trialParameters."

    /// Names of the trial parameters that `text` refers to, in order.
    public static func placeholders(in text: String) -> [String] {
        var names: [String] = []
        var rest = Substring(text)
        while let start = rest.range(of: prefix) {
            let after = rest[start.upperBound...]
            guard let end = after.firstIndex(of: "}") else { break }
            names.append(String(after[..<end]))
            rest = after[after.index(after: end)...]
        }
        return names
    }

    /// Katib's trial metadata references that a trial parameter may point at.
    public static func isMetadataReference(_ reference: String) -> Bool {
        ["${trialSpec.Name}", "${trialSpec.Namespace}", "${trialSpec.Kind}", "${trialSpec.APIVersion}"].contains(reference)
            || reference.hasPrefix("${trialSpec.Labels[") || reference.hasPrefix("${trialSpec.Annotations[")
    }

    /// The value of every trial parameter for one trial. Metadata references read the trialSpec as
    /// written, as Katib reads the object it creates: its kind, apiVersion, namespace (`namespace`,
    /// the experiment's, when it names none), and its labels and annotations by key.
    public static func values(
        for template: TrialTemplateSpec, assignment: [String: String], trialName: String, namespace: String
    ) -> [String: String] {
        let metadata = TrialSpecShape.Metadata(template.trialSpec, experimentNamespace: namespace)
        var values: [String: String] = [:]
        for parameter in template.trialParameters {
            let reference = parameter.reference
            switch reference {
            case "${trialSpec.Name}": values[parameter.name] = trialName
            case "${trialSpec.Namespace}": values[parameter.name] = metadata.namespace ?? namespace
            case "${trialSpec.Kind}": values[parameter.name] = metadata.kind
            case "${trialSpec.APIVersion}": values[parameter.name] = metadata.apiVersion
            default:
                if let key = metadataKey(reference, "Labels") {
                    values[parameter.name] = metadata.labels[key] ?? ""
                } else if let key = metadataKey(reference, "Annotations") {
                    values[parameter.name] = metadata.annotations[key] ?? ""
                } else {
                    values[parameter.name] = assignment[reference] ?? ""
                }
            }
        }
        return values
    }

    /// The key of `${trialSpec.Labels[key]}` (for `field` Labels) or of `${trialSpec.Annotations[key]}`.
    public static func metadataKey(_ reference: String, _ field: String) -> String? {
        let prefix = "${trialSpec.\(field)["
        guard reference.hasPrefix(prefix), reference.hasSuffix("]}") else { return nil }
        return String(reference.dropFirst(prefix.count).dropLast(2))
    }

    /// `text` with every `${trialParameters.NAME}` replaced by its value (unknown names are left as written).
    public static func render(_ text: String, values: [String: String]) -> String {
        guard text.contains(prefix) else { return text }
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: prefix) {
            result += rest[..<start.lowerBound]
            let after = rest[start.upperBound...]
            guard let end = after.firstIndex(of: "}") else {
                rest = rest[start.lowerBound...]
                break
            }
            let name = String(after[..<end])
            result += values[name] ?? "\(prefix)\(name)}"
            rest = after[after.index(after: end)...]
        }
        return result + rest
    }
}

extension SpecValue {
    /// The manifest with `${trialParameters.X}` substituted in every string.
    public func rendered(_ values: [String: String]) -> SpecValue {
        switch self {
        case .mapping(let entries, let line):
            return .mapping(entries.map { (key: $0.key, value: $0.value.rendered(values)) }, line: line)
        case .sequence(let items, let line):
            return .sequence(items.map { $0.rendered(values) }, line: line)
        case .scalar(let text, let quoted, let line):
            let rendered = TemplateRenderer.render(text, values: values)
            // A placeholder that filled a whole value (`--lr=…` aside) stays a string in the manifest.
            return .scalar(rendered, quoted: quoted || rendered != text, line: line)
        case .null:
            return self
        }
    }
}
