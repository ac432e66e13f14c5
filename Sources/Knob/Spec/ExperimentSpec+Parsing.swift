import KnobAlgorithms
import Foundation

extension ExperimentSpec {
    /// Parses and validates a Katib `Experiment` in YAML or JSON, reporting every problem at once.
    public static func parse(_ text: String, limits: SpecLimits = .default) throws(SpecError) -> ExperimentSpec {
        try parse(root: try SpecValue.parse(text, limits: limits), limits: limits)
    }

    /// Parses a spec whose trial template is kept in a ConfigMap (`trialTemplate.configMap`), with `template`,
    /// the ConfigMap's, in its place: the template is validated as an inline `trialSpec` would be.
    public static func parse(_ text: String, templateFromConfigMap template: SpecValue, limits: SpecLimits = .default) throws(SpecError) -> ExperimentSpec {
        let root = try SpecValue.parse(text, limits: limits)
        return try parse(root: root.replacing(["spec", "trialTemplate"]) { trialTemplate in
            guard case .mapping(var entries, let line) = trialTemplate else { return trialTemplate }
            entries.removeAll { $0.key == "configMap" || $0.key == "trialSpec" }
            entries.append((key: "trialSpec", value: template))
            return .mapping(entries, line: line)
        }, limits: limits)
    }

    private static func parse(root: SpecValue, limits: SpecLimits) throws(SpecError) -> ExperimentSpec {
        let reader = SpecReader(limits: limits, root: root)
        let spec = read(root, reader)
        if let spec, reader.problems.isEmpty { return spec }
        // In document order where lines are known; problems without a line keep their place.
        let ordered = reader.problems.enumerated().sorted { a, b in
            (a.element.line ?? Int.max, a.offset) < (b.element.line ?? Int.max, b.offset)
        }.map(\.element)
        let more = reader.unlisted > 0 ? [SpecProblem(path: "", message: "and \(reader.unlisted) more problems", line: ordered.last?.line)] : []
        throw SpecError(ordered.isEmpty ? [SpecProblem(path: "", message: "the spec is incomplete")] : ordered + more)
    }

    private static func read(_ root: SpecValue, _ r: SpecReader) -> ExperimentSpec? {
        guard case .mapping = root else {
            r.problem("", "the spec must be a mapping with apiVersion, kind, metadata and spec, found \(root.kindName)", at: root)
            return nil
        }
        guard let doc = r.mapping(root, "", known: ["apiVersion", "kind", "metadata", "spec", "status"]) else { return nil }
        if let apiVersion = r.string(doc["apiVersion"], "apiVersion"), apiVersion != "kubeflow.org/v1beta1" {
            r.problem("apiVersion", "\"\(apiVersion)\" is not supported; use kubeflow.org/v1beta1", at: doc["apiVersion"])
        }
        if let kind = r.string(doc["kind"], "kind"), kind != "Experiment" {
            r.problem("kind", "\"\(kind)\" is not an Experiment", at: doc["kind"])
        }
        let metadata = r.mapping(doc["metadata"], "metadata", known: ["name", "namespace"],
                                 ignored: ["labels", "annotations", "generateName", "uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "finalizers"])
        if metadata == nil, doc["metadata"] == nil { r.problem("metadata.name", "is required") }
        let name = r.string(metadata?["name"], "metadata.name", required: metadata != nil)
        if let name, !name.isEmpty, let complaint = dns1123LabelProblem(name) {
            r.problem("metadata.name", complaint, at: metadata?["name"])
        }
        let namespace = r.string(metadata?["namespace"], "metadata.namespace")

        guard let spec = r.mapping(doc["spec"], "spec", known: [
            "parameters", "objective", "algorithm", "parallelTrialCount", "maxTrialCount", "maxFailedTrialCount",
            "trialTemplate", "metricsCollectorSpec", "resumePolicy", "earlyStopping", "nasConfig",
        ]) else {
            r.problem("spec", "is required")
            return nil
        }
        if let nas = spec["nasConfig"], nas != .null(line: nil) {
            r.problem("spec.nasConfig", "neural architecture search is not supported; remove this field", at: nas)
        }
        _ = r.choice(spec["resumePolicy"], "spec.resumePolicy", allowed: ["Never", "LongRunning", "FromVolume"])

        let (parameters, declaredNames) = readParameters(spec["parameters"], r)
        let objective = readObjective(spec["objective"], r)
        let algorithm = readAlgorithm(spec["algorithm"], r)
        let earlyStopping = readEarlyStopping(spec["earlyStopping"], maximize: objective?.type == .maximize, r)

        let parallel = r.integer(spec["parallelTrialCount"], "spec.parallelTrialCount", in: 1...r.limits.maxParallelTrialCount,
                                 hint: r.limits.maxParallelTrialCount == SpecLimits.default.maxParallelTrialCount
                                     ? " (knobd --max-parallel raises the limit)" : " (the limit knobd --max-parallel sets)")
        let maxTrials = r.integer(spec["maxTrialCount"], "spec.maxTrialCount", in: 1...r.limits.maxTrialCount)
        let maxFailed = r.integer(spec["maxFailedTrialCount"], "spec.maxFailedTrialCount", in: 0...r.limits.maxTrialCount)
        if let maxTrials, maxTrials >= 1 {
            if let parallel, parallel > maxTrials {
                r.problem("spec.parallelTrialCount", "\(parallel) must not exceed maxTrialCount \(maxTrials)", at: spec["parallelTrialCount"])
            }
            if let maxFailed, maxFailed > maxTrials {
                r.problem("spec.maxFailedTrialCount", "\(maxFailed) must not exceed maxTrialCount \(maxTrials)", at: spec["maxFailedTrialCount"])
            }
        }

        let template = readTrialTemplate(spec["trialTemplate"], parameters: parameters, declaredNames: declaredNames, r)
        let collector = readCollector(spec["metricsCollectorSpec"], r)
        if let template, template.command == nil, let trialSpec = template.trialSpec {
            // A collector in a container beside the trial's goes into the trial's pod templates: a kind without any
            // (an Argo Workflow, a Tekton PipelineRun) has nowhere to put it.
            if let collector, [.file, .tensorFlowEvent, .custom].contains(collector.kind),
               TrialSpecShape.podTemplates(in: trialSpec.jsonObject).isEmpty {
                let kind = trialSpec["kind"]?.scalarText ?? "trial"
                r.problem("spec.metricsCollectorSpec.collector.kind",
                          "a \(collector.kind.rawValue) collector runs in a container beside the trial's, and a \(kind)'s trialSpec has no pod "
                              + "template knob can add it to; print the metrics to standard output (StdOut) or push them (Push)",
                          at: spec["metricsCollectorSpec"]?["collector"]?["kind"] ?? spec["metricsCollectorSpec"])
            }
            // Kubernetes trials: the trial's name (`<experiment>-<n>`) names its Pod or Job and fills label values.
            if let name, name.count > 57 {
                r.problem("metadata.name", "\"\(name)\" is \(name.count) characters; for Kubernetes trials at most 57, so that a trial's "
                          + "name (name-N) fits a label value's 63", at: metadata?["name"])
            }
            if let collector, let folder = collector.sharedFolder {
                // The folder is an emptyDir volume shared with the collector's container: a path of its own inside the container.
                let pathField = "spec.metricsCollectorSpec.source.fileSystemPath.path"
                let at = spec["metricsCollectorSpec"]?["source"]?["fileSystemPath"]?["path"]
                if !(collector.path ?? "").hasPrefix("/") {
                    r.problem(pathField, "\"\(collector.path ?? "")\" must be an absolute path inside the trial's container (e.g. /var/log/katib/metrics.log)", at: at)
                } else if folder == "/" || folder.isEmpty {
                    r.problem(pathField, "\"\(collector.path ?? "")\": the collector shares the file's folder with the trial's container, and that "
                              + "cannot be /; put the file in a folder of its own (e.g. /var/log/katib/metrics.log)", at: at)
                }
            }
        } else if let template, template.command != nil {
            if let kind = collector?.kind, kind == .custom {
                r.problem("spec.metricsCollectorSpec.collector.kind",
                          "a Custom collector is a container beside a Kubernetes trial; a local trial's metrics come from its output (StdOut), a File, TensorFlowEvent or Push",
                          at: spec["metricsCollectorSpec"])
            }
        }

        if let algorithm, !parameters.isEmpty, r.problems.isEmpty {
            checkAlgorithm(algorithm, space: SearchSpace(parameters.map(\.parameter)), r)
        }

        guard let name, let objective, let algorithm, let template, let collector, !parameters.isEmpty else { return nil }
        return ExperimentSpec(
            name: name, namespace: namespace, parameters: parameters, objective: objective, algorithm: algorithm,
            parallelTrialCount: parallel ?? 3, maxTrialCount: maxTrials, maxFailedTrialCount: maxFailed,
            trialTemplate: template, metricsCollector: collector, earlyStopping: earlyStopping)
    }

    // MARK: Parameters

    /// The valid parameters, and the names of all parameters (valid or not), so that later checks
    /// do not report a parameter's own problem again.
    private static func readParameters(_ node: SpecValue?, _ r: SpecReader) -> ([ParameterSpec], [String]) {
        let items = r.sequence(node, "spec.parameters")
        if items.isEmpty {
            r.problem("spec.parameters", "at least one parameter is required", at: node)
            return ([], [])
        }
        if items.count > r.limits.maxParameters {
            r.problem("spec.parameters", "has \(items.count) parameters; at most \(r.limits.maxParameters) are searched", at: node)
            return ([], [])
        }
        var result: [ParameterSpec] = []
        var seen: [String] = []
        var seenSet = Set<String>()
        for (i, item) in items.enumerated() {
            let path = "spec.parameters[\(i)]"
            guard let p = r.mapping(item, path, known: ["name", "parameterType", "feasibleSpace"]) else { continue }
            let name = r.string(p["name"], "\(path).name", required: true)
            if let name, !name.isEmpty {
                if !seenSet.insert(name).inserted { r.problem("\(path).name", "\"\(name)\" is used by an earlier parameter", at: p["name"]) }
                seen.append(name)
            }
            let type = r.choice(p["parameterType"], "\(path).parameterType", allowed: ["double", "int", "discrete", "categorical"], required: true)
            let spacePath = "\(path).feasibleSpace"
            guard let space = r.mapping(p["feasibleSpace"], spacePath, known: ["min", "max", "step", "list", "distribution"]) else {
                r.problem(spacePath, "is required", at: item)
                continue
            }
            guard let name, let type, let parameter = readFeasibleSpace(space, name: name, type: type, path: spacePath, r) else { continue }
            result.append(ParameterSpec(name: name, parameter: parameter))
        }
        return (result, seen)
    }

    /// The parameter: its values and, for a double or an int, how they are drawn (Katib's
    /// `distribution`; a list ignores it, as Katib does).
    private static func readFeasibleSpace(_ space: SpecValue, name: String, type: String, path: String, _ r: SpecReader) -> Parameter? {
        let distributionName = r.choice(space["distribution"], "\(path).distribution", allowed: ["uniform", "logUniform", "normal", "logNormal"]) ?? "uniform"
        let scale: Parameter.Scale = distributionName == "logUniform" || distributionName == "logNormal" ? .log : .linear
        let distribution: Parameter.Distribution = distributionName == "normal" || distributionName == "logNormal" ? .normal : .uniform
        guard let kind = readRange(space, type: type, distributionName: distributionName, scale: scale, path: path, r) else { return nil }
        return Parameter(name: name, kind: kind, distribution: distribution)
    }

    private static func readRange(
        _ space: SpecValue, type: String, distributionName: String, scale: Parameter.Scale, path: String, _ r: SpecReader
    ) -> Parameter.Kind? {
        switch type {
        case "double":
            if space["list"] != nil { r.problem("\(path).list", "a double parameter takes min and max, not a list", at: space["list"]) }
            let min = r.number(space["min"], "\(path).min", required: true)
            let max = r.number(space["max"], "\(path).max", required: true)
            let step = r.number(space["step"], "\(path).step")
            guard let min, let max else { return nil }
            guard min < max else {
                r.problem(path, "min \(formatDouble(min)) must be below max \(formatDouble(max))", at: space)
                return nil
            }
            guard (max - min).isFinite else {
                r.problem(path, "the range \(formatDouble(min))...\(formatDouble(max)) is wider than a double can hold", at: space)
                return nil
            }
            if scale == .log, min <= 0 {
                r.problem("\(path).min", "\(distributionName) needs min above 0, found \(formatDouble(min))", at: space["min"])
                return nil
            }
            guard let step else { return .double(min: min, max: max, step: nil, scale: scale) }
            guard checkStep(step, min: min, max: max, path: path, space: space, r) else { return nil }
            return .double(min: min, max: max, step: step, scale: scale)
        case "int":
            if space["list"] != nil { r.problem("\(path).list", "an int parameter takes min and max, not a list", at: space["list"]) }
            let min = r.integer(space["min"], "\(path).min", required: true)
            let max = r.integer(space["max"], "\(path).max", required: true)
            let step = r.integer(space["step"], "\(path).step")
            guard let min, let max else { return nil }
            guard min <= max else {
                r.problem(path, "min \(min) must not be above max \(max)", at: space)
                return nil
            }
            if scale == .log, min <= 0 {
                r.problem("\(path).min", "\(distributionName) needs min above 0, found \(min)", at: space["min"])
                return nil
            }
            if let step, !checkStep(Double(step), min: Double(min), max: Double(max), path: path, space: space, r) { return nil }
            return .int(min: min, max: max, step: step ?? 1, scale: scale)
        default:
            for key in ["min", "max", "step"] where space[key] != nil {
                r.problem("\(path).\(key)", "a \(type) parameter takes a list, not \(key)", at: space[key])
            }
            let items = r.sequence(space["list"], "\(path).list")
            if items.isEmpty {
                r.problem("\(path).list", "must list at least one value", at: space)
                return nil
            }
            if items.count > r.limits.maxListValues {
                r.problem("\(path).list", "has \(items.count) values; a parameter takes at most \(r.limits.maxListValues)", at: space["list"])
                return nil
            }
            var values: [String] = []
            var listed = Set<String>()
            for (j, item) in items.enumerated() {
                guard let value = r.string(item, "\(path).list[\(j)]", required: true) else { continue }
                if !listed.insert(value).inserted {
                    r.problem("\(path).list[\(j)]", "\"\(value.prefix(40))\" is listed twice", at: item)
                } else if type == "discrete", parseDecimal(value.trimmingCharacters(in: .whitespaces)) == nil {
                    r.problem("\(path).list[\(j)]", "\"\(value)\" is not a number; a discrete parameter lists numbers (use categorical for labels)", at: item)
                } else {
                    values.append(value)
                }
            }
            guard values.count == items.count else { return nil }
            return type == "discrete" ? .discrete(values) : .categorical(values)
        }
    }

    /// Whether `step` is positive, fits the range, and makes a number of values that can be
    /// counted exactly (at most 2^53); reports the problem otherwise.
    private static func checkStep(_ step: Double, min: Double, max: Double, path: String, space: SpecValue, _ r: SpecReader) -> Bool {
        guard step > 0 else {
            r.problem("\(path).step", "must be positive, found \(formatDouble(step))", at: space["step"])
            return false
        }
        guard step <= max - min || min == max else {
            r.problem("\(path).step", "\(formatDouble(step)) is larger than the range \(formatDouble(min))...\(formatDouble(max))", at: space["step"])
            return false
        }
        let count = ((max - min) / step).rounded(.down) + 1
        guard count.isFinite, count <= Double(SpecLimits.maxIntegerMagnitude) else {
            r.problem("\(path).step", "\(formatDouble(step)) makes \(count.isFinite ? String(format: "%.3g", count) : "too many") values in "
                      + "\(formatDouble(min))...\(formatDouble(max)), more than 2^53; use a larger step, or none", at: space["step"])
            return false
        }
        return true
    }

    // MARK: Objective and algorithm

    private static func readObjective(_ node: SpecValue?, _ r: SpecReader) -> ObjectiveSpec? {
        let path = "spec.objective"
        guard let o = r.mapping(node, path, known: ["type", "goal", "objectiveMetricName", "additionalMetricNames", "metricStrategies"]) else {
            r.problem(path, "is required")
            return nil
        }
        let type = r.choice(o["type"], "\(path).type", allowed: ["minimize", "maximize"], required: true).flatMap(ObjectiveSpec.Direction.init)
        let goal = r.number(o["goal"], "\(path).goal")
        let metric = r.string(o["objectiveMetricName"], "\(path).objectiveMetricName", required: true)
        var additional: [String] = []
        var additionalSet = Set<String>()
        for (i, item) in r.sequence(o["additionalMetricNames"], "\(path).additionalMetricNames").enumerated() {
            let itemPath = "\(path).additionalMetricNames[\(i)]"
            guard let name = r.string(item, itemPath, required: true), !name.isEmpty else { continue }
            if name == metric {
                r.problem(itemPath, "\"\(name)\" is already the objective metric", at: item)
            } else if !additionalSet.insert(name).inserted {
                r.problem(itemPath, "\"\(name)\" is listed twice", at: item)
            } else {
                additional.append(name)
            }
        }
        guard let type, let metric, !metric.isEmpty else { return nil }
        var strategies: [String: ObjectiveSpec.Strategy] = [metric: type == .maximize ? .max : .min]
        for name in additional { strategies[name] = .latest }
        for (i, item) in r.sequence(o["metricStrategies"], "\(path).metricStrategies").enumerated() {
            let itemPath = "\(path).metricStrategies[\(i)]"
            guard let s = r.mapping(item, itemPath, known: ["name", "value"]) else { continue }
            let name = r.string(s["name"], "\(itemPath).name", required: true)
            let value = r.choice(s["value"], "\(itemPath).value", allowed: ["min", "max", "latest"], required: true)
            guard let name, let value else { continue }
            guard name == metric || additionalSet.contains(name) else {
                r.problem("\(itemPath).name", "\"\(name)\" is neither the objective nor an additional metric", at: s["name"])
                continue
            }
            strategies[name] = ObjectiveSpec.Strategy(rawValue: value)
        }
        return ObjectiveSpec(type: type, goal: goal, objectiveMetricName: metric, additionalMetricNames: additional, metricStrategies: strategies)
    }

    private static func readAlgorithm(_ node: SpecValue?, _ r: SpecReader) -> AlgorithmSpec? {
        let path = "spec.algorithm"
        guard let a = r.mapping(node, path, known: ["algorithmName", "algorithmSettings"]) else {
            r.problem(path, "is required")
            return nil
        }
        let name = r.string(a["algorithmName"], "\(path).algorithmName", required: true)
        if let name, !name.isEmpty, SuggesterRegistry.types[name] == nil {
            r.problem("\(path).algorithmName", SuggesterRegistry.unknownAlgorithmMessage(name, hint: closest(name, in: SuggesterRegistry.names)),
                      at: a["algorithmName"])
        }
        let settings = readSettings(a["algorithmSettings"], "\(path).algorithmSettings", r)
        guard let name, SuggesterRegistry.types[name] != nil else { return nil }
        return AlgorithmSpec(algorithmName: name, settings: settings.settings)
    }

    /// An `algorithmSettings` list (of an algorithm or of early stopping): its readable settings in
    /// order, with the position and node of the list item each came from; a name given twice is a problem.
    private static func readSettings(_ node: SpecValue?, _ path: String, _ r: SpecReader)
        -> (settings: [AlgorithmSpec.Setting], items: [(position: Int, node: SpecValue)], duplicated: Bool) {
        var result: (settings: [AlgorithmSpec.Setting], items: [(position: Int, node: SpecValue)], duplicated: Bool) = ([], [], false)
        var names = Set<String>()
        for (i, item) in r.sequence(node, path).enumerated() {
            let itemPath = "\(path)[\(i)]"
            guard let s = r.mapping(item, itemPath, known: ["name", "value"]) else { continue }
            guard let name = r.string(s["name"], "\(itemPath).name", required: true),
                  let value = r.string(s["value"], "\(itemPath).value", required: true) else { continue }
            if !names.insert(name).inserted {
                r.problem("\(itemPath).name", "\"\(name)\" is set twice", at: s["name"])
                result.duplicated = true
            }
            result.settings.append(AlgorithmSpec.Setting(name: name, value: value))
            result.items.append((i, item))
        }
        return result
    }

    /// `spec.earlyStopping`: a rule by Katib's name, its settings checked by the rule itself.
    private static func readEarlyStopping(_ node: SpecValue?, maximize: Bool, _ r: SpecReader) -> EarlyStoppingSpec? {
        let path = "spec.earlyStopping"
        guard let node, node != .null(line: nil) else { return nil }
        guard let e = r.mapping(node, path, known: ["algorithmName", "algorithmSettings"]) else { return nil }
        let name = r.string(e["algorithmName"], "\(path).algorithmName", required: true)
        if let name, !name.isEmpty, StoppingRuleRegistry.types[name] == nil {
            let hint = closest(name, in: StoppingRuleRegistry.names).map { "did you mean \($0)? " } ?? ""
            r.problem("\(path).algorithmName", "unknown early stopping algorithm \"\(name)\"; \(hint)known: "
                      + StoppingRuleRegistry.names.joined(separator: ", "), at: e["algorithmName"])
        }
        let (settings, items, duplicated) = readSettings(e["algorithmSettings"], "\(path).algorithmSettings", r)
        // A setting given twice is its own problem; which value the rule would take is moot.
        guard let name, StoppingRuleRegistry.types[name] != nil, !duplicated else { return nil }
        let spec = EarlyStoppingSpec(algorithmName: name, settings: settings)
        do {
            _ = try StoppingRuleRegistry.make(name, context: StoppingContext(settings: spec.settingsByName, maximize: maximize))
        } catch SuggesterError.invalidSetting(let setting, let message) {
            let item = settings.lastIndex { $0.name == setting }.map { items[$0] }
            r.problem("\(path).algorithmSettings\(item.map { "[\($0.position)]" } ?? "")", "\(setting): \(message)", at: item?.node ?? node)
            return nil
        } catch {
            r.problem(path, "\(error)", at: node)
            return nil
        }
        return spec
    }

    /// Lets the suggester check its settings against the space, and places its complaint.
    private static func checkAlgorithm(_ algorithm: AlgorithmSpec, space: SearchSpace, _ r: SpecReader) {
        do {
            let suggester = try SuggesterRegistry.make(algorithm.algorithmName, context: SuggesterContext(space: space, settings: algorithm.settingsByName, seed: 0))
            if let grid = suggester as? GridSuggester, grid.size > r.limits.maxGridPoints {
                let count = grid.size == Int.max ? "more than 9.2e18" : String(grid.size)
                r.problem("spec.parameters", "the grid has \(count) points, more than the \(r.limits.maxGridPoints) a grid search may have; "
                          + "use larger steps (or a smaller grid_points), or another algorithm such as random or bayesianoptimization")
            }
        } catch let error as SuggesterError {
            switch error {
            case .invalidSetting(let name, let message):
                let index = algorithm.settings.firstIndex { $0.name == name }.map { "[\($0)]" } ?? ""
                r.problem("spec.algorithm.algorithmSettings\(index)", "\(name): \(message)")
            case .unsupportedSpace(let parameter, let message):
                let index = space.parameters.firstIndex { $0.name == parameter } ?? 0
                r.problem("spec.parameters[\(index)].feasibleSpace", message)
            case .unknownAlgorithm, .exhausted:
                r.problem("spec.algorithm", error.description)
            }
        } catch {
            r.problem("spec.algorithm", "\(error)")
        }
    }

    // MARK: Trial template

    /// Why a `${trialSpec.…}` reference cannot be filled, if it cannot: Kind, APIVersion, Labels
    /// and Annotations read the trialSpec, and a label or annotation must be one it defines.
    private static func metadataReferenceProblem(_ reference: String, trialSpec: SpecValue?) -> String? {
        guard TemplateRenderer.isMetadataReference(reference), reference != "${trialSpec.Name}", reference != "${trialSpec.Namespace}" else { return nil }
        guard let trialSpec else { return "\(reference) reads the trialSpec, and this template has none (it runs a command)" }
        let metadata = TrialSpecShape.Metadata(trialSpec, experimentNamespace: nil)
        for (field, defined) in [("Labels", metadata.labels), ("Annotations", metadata.annotations)] {
            guard let key = TemplateRenderer.metadataKey(reference, field) else { continue }
            if defined[key] == nil {
                let known = defined.keys.sorted()
                return "the trialSpec defines no \(field == "Labels" ? "label" : "annotation") \"\(key)\" (metadata.\(field.lowercased()): "
                    + (known.isEmpty ? "none" : known.joined(separator: ", ")) + ")"
            }
        }
        return nil
    }

    private static func readTrialTemplate(
        _ node: SpecValue?, parameters: [ParameterSpec], declaredNames: [String], _ r: SpecReader
    ) -> TrialTemplateSpec? {
        let path = "spec.trialTemplate"
        guard let t = r.mapping(node, path, known: [
            "trialParameters", "command", "workingDir", "env", "timeoutSeconds", "trialSpec", "primaryContainerName",
            "retain", "successCondition", "failureCondition", "primaryPodLabels", "configMap",
        ]) else {
            r.problem(path, "is required: give a command (argv list) for local trials, or a trialSpec for Kubernetes")
            return nil
        }
        let configMap = readConfigMap(t["configMap"], "\(path).configMap", r)
        if configMap != nil, t["trialSpec"] != nil {
            r.problem("\(path).configMap", "give the template either inline (trialSpec) or in a ConfigMap (configMap), not both", at: t["configMap"])
        }
        if configMap != nil, t["command"] != nil {
            r.problem("\(path).configMap", "a ConfigMap holds a Kubernetes trial's template; a local trial's is its command: remove one", at: t["configMap"])
        }
        // Katib's trial-end fields: GJSON paths over the trial's object, and the labels of its primary pods.
        var conditions: [String: String] = [:]
        for field in ["successCondition", "failureCondition"] {
            guard let text = r.string(t[field], "\(path).\(field)") else { continue }
            if text.trimmingCharacters(in: .whitespaces).isEmpty {
                r.problem("\(path).\(field)", "must not be empty: a GJSON path over the trial's object, e.g. "
                          + #"status.conditions.#(type=="Succeeded")#|#(status=="True")#"#, at: t[field])
                continue
            }
            do {
                _ = try GJSONPath.parse(text)
                conditions[field] = text
            } catch {
                r.problem("\(path).\(field)", "\"\(text.prefix(120))\" is not a GJSON path knob reads: \(error)", at: t[field])
            }
        }
        var primaryPodLabels: [String: String]?
        if let labels = t["primaryPodLabels"], labels != .null(line: nil) {
            if case .mapping(let entries, _) = labels {
                primaryPodLabels = [:]
                for entry in entries {
                    guard let value = r.string(entry.value, "\(path).primaryPodLabels.\(entry.key)") else { continue }
                    if entry.key.isEmpty { r.problem("\(path).primaryPodLabels", "a label's key must not be empty", at: labels) }
                    primaryPodLabels?[entry.key] = value
                }
            } else {
                r.problem("\(path).primaryPodLabels", "must be a mapping of label keys to values (e.g. training.kubeflow.org/job-role: master), "
                          + "found \(labels.kindName)", at: labels)
            }
        }
        let parameterNames = Set(declaredNames)

        // Trial parameters: Katib's explicit list, or one per search parameter with the same name.
        var trialParameters: [TrialTemplateSpec.TrialParameter] = []
        var trialParameterNames = Set<String>()
        let declared = r.sequence(t["trialParameters"], "\(path).trialParameters")
        for (i, item) in declared.enumerated() {
            let itemPath = "\(path).trialParameters[\(i)]"
            guard let p = r.mapping(item, itemPath, known: ["name", "reference", "description"]) else { continue }
            guard let name = r.string(p["name"], "\(itemPath).name", required: true),
                  let reference = r.string(p["reference"], "\(itemPath).reference", required: true) else { continue }
            if !trialParameterNames.insert(name).inserted {
                r.problem("\(itemPath).name", "\"\(name)\" is defined twice", at: p["name"])
            }
            if !parameterNames.contains(reference), !TemplateRenderer.isMetadataReference(reference), !declaredNames.isEmpty {
                let hint = closest(reference, in: Array(parameterNames)).map { "; did you mean \($0)?" } ?? ""
                r.problem("\(itemPath).reference", "\"\(reference)\" is not a parameter in spec.parameters\(hint)", at: p["reference"])
            }
            if t["configMap"] == nil, let problem = metadataReferenceProblem(reference, trialSpec: t["trialSpec"]) {
                r.problem("\(itemPath).reference", problem, at: p["reference"])
            }
            trialParameters.append(.init(name: name, reference: reference, description: r.string(p["description"], "\(itemPath).description")))
        }
        if t["trialParameters"] == nil {
            trialParameters = declaredNames.map { .init(name: $0, reference: $0, description: nil) }
        }
        let referenced = Set(trialParameters.map(\.reference))
        for (i, name) in declaredNames.enumerated() where !referenced.contains(name) {
            r.problem("spec.parameters[\(i)]", "\"\(name)\" is not referenced by any trialTemplate.trialParameters[].reference, so no trial would see its value")
        }

        let command = t["command"].map { node in
            r.sequence(node, "\(path).command").enumerated().compactMap { i, item in r.string(item, "\(path).command[\(i)]", required: true) }
        }
        if let command, command.isEmpty { r.problem("\(path).command", "must hold at least the program to run", at: t["command"]) }
        let workingDir = r.string(t["workingDir"], "\(path).workingDir")
        let env = readEnv(t["env"], "\(path).env", r)
        let timeout = r.number(t["timeoutSeconds"], "\(path).timeoutSeconds")
        if let timeout, timeout <= 0 || timeout > r.limits.maxTimeoutSeconds {
            r.problem("\(path).timeoutSeconds", "must be above 0 and at most \(formatDouble(r.limits.maxTimeoutSeconds)) (a year), "
                      + "found \(formatDouble(timeout))", at: t["timeoutSeconds"])
        }
        let trialSpec = t["trialSpec"]
        if command == nil, trialSpec == nil, t["configMap"] == nil {
            r.problem(path, "needs a command (argv list, for local trials) or a trialSpec (a Kubernetes Job, Pod, PyTorchJob…)", at: node)
        }
        if let trialSpec, trialSpec.mappingKeys.isEmpty {
            r.problem("\(path).trialSpec", "must be a Kubernetes manifest (a mapping), found \(trialSpec.kindName)", at: trialSpec)
        } else if let trialSpec, command == nil {
            // What decides whether knob can run the trials is part of the spec's validation.
            let ending = TrialSpecShape.Ending(kind: trialSpec["kind"]?.scalarText ?? "", successCondition: conditions["successCondition"],
                                               failureCondition: conditions["failureCondition"], primaryPodLabels: primaryPodLabels)
            for problem in TrialSpecShape.problems(trialSpec, primaryContainerName: r.string(t["primaryContainerName"], "\(path).primaryContainerName"),
                                                   ending: ending) {
                // A condition given but unreadable was said above.
                if problem.path.hasSuffix("Condition"), t[problem.path] != nil { continue }
                r.problem("\(path).\(problem.path)", problem.message, at: t[problem.path.components(separatedBy: ".").first ?? ""])
            }
        }

        // Every ${trialParameters.X} placeholder must name a trial parameter, and every trial
        // parameter must be used somewhere.
        let defined = Set(trialParameters.map(\.name))
        var used: Set<String> = []
        var texts: [(String, String)] = []
        for (i, arg) in (command ?? []).enumerated() { texts.append(("\(path).command[\(i)]", arg)) }
        if let workingDir { texts.append(("\(path).workingDir", workingDir)) }
        for (key, value) in env.sorted(by: { $0.key < $1.key }) { texts.append(("\(path).env.\(key)", value)) }
        if let trialSpec { texts += trialSpec.allScalars(prefix: "\(path).trialSpec") }
        for (textPath, text) in texts {
            for placeholder in TemplateRenderer.placeholders(in: text) {
                used.insert(placeholder)
                if !defined.contains(placeholder) {
                    let hint = closest(placeholder, in: Array(defined)).map { "; did you mean \($0)?" } ?? ""
                    r.problem(textPath, "${trialParameters.\(placeholder)} is not a trial parameter\(hint); defined: \(defined.sorted().joined(separator: ", "))")
                }
            }
        }
        // A ConfigMap's template is read when the experiment starts, and checked then.
        for (i, parameter) in trialParameters.enumerated() where !used.contains(parameter.name) && configMap == nil {
            let location = t["trialParameters"] == nil ? "spec.parameters[\(declaredNames.firstIndex(of: parameter.name) ?? i)]" : "\(path).trialParameters[\(i)]"
            r.problem(location, "\"\(parameter.name)\" is never used: put ${trialParameters.\(parameter.name)} in the command or trialSpec")
        }

        return TrialTemplateSpec(
            trialParameters: trialParameters, command: command, workingDir: workingDir, env: env, timeoutSeconds: timeout,
            trialSpec: trialSpec, primaryContainerName: r.string(t["primaryContainerName"], "\(path).primaryContainerName"),
            retain: r.bool(t["retain"], "\(path).retain") ?? false,
            successCondition: conditions["successCondition"], failureCondition: conditions["failureCondition"],
            primaryPodLabels: primaryPodLabels, configMap: configMap)
    }

    /// `trialTemplate.configMap`: Katib requires all three fields.
    private static func readConfigMap(_ node: SpecValue?, _ path: String, _ r: SpecReader) -> TrialTemplateSpec.ConfigMapSource? {
        guard let node, node != .null(line: nil) else { return nil }
        guard let m = r.mapping(node, path, known: ["configMapName", "configMapNamespace", "templatePath"]) else { return nil }
        let name = r.string(m["configMapName"], "\(path).configMapName", required: true)
        let namespace = r.string(m["configMapNamespace"], "\(path).configMapNamespace", required: true)
        let key = r.string(m["templatePath"], "\(path).templatePath", required: true)
        if let name, !name.isEmpty, !isDNSSubdomain(name) {
            r.problem("\(path).configMapName", "\"\(name.prefix(80))\" is not a ConfigMap name (lower-case letters, digits, '-' and '.')", at: m["configMapName"])
        }
        if let namespace, !namespace.isEmpty, let problem = dns1123LabelProblem(namespace) {
            r.problem("\(path).configMapNamespace", problem, at: m["configMapNamespace"])
        }
        guard let name, let namespace, let key, !name.isEmpty, !namespace.isEmpty, !key.isEmpty else { return nil }
        return TrialTemplateSpec.ConfigMapSource(configMapName: name, configMapNamespace: namespace, templatePath: key)
    }

    /// `env` as a mapping (`NAME: value`) or a Kubernetes-style list (`- name: NAME, value: v`).
    private static func readEnv(_ node: SpecValue?, _ path: String, _ r: SpecReader) -> [String: String] {
        var env: [String: String] = [:]
        switch node {
        case .mapping(let entries, _)?:
            for entry in entries { env[entry.key] = r.string(entry.value, "\(path).\(entry.key)") ?? "" }
        case .sequence(let items, _)?:
            for (i, item) in items.enumerated() {
                guard let e = r.mapping(item, "\(path)[\(i)]", known: ["name", "value"]),
                      let name = r.string(e["name"], "\(path)[\(i)].name", required: true) else { continue }
                env[name] = r.string(e["value"], "\(path)[\(i)].value") ?? ""
            }
        case nil, .null?:
            break
        case let other?:
            r.problem(path, "must be a mapping of NAME: value, found \(other.kindName)", at: other)
        }
        for name in env.keys where name.isEmpty || name.contains("=") {
            r.problem(path, "\"\(name)\" is not a valid environment variable name")
        }
        return env
    }

    // MARK: Metrics collector

    private static func readCollector(_ node: SpecValue?, _ r: SpecReader) -> MetricsCollectorSpec? {
        let path = "spec.metricsCollectorSpec"
        guard let m = r.mapping(node, path, known: ["collector", "source"]) else { return .stdOut }
        var kind = MetricsCollectorSpec.Kind.stdOut
        var customCollector: SpecValue?
        if let c = r.mapping(m["collector"], "\(path).collector", known: ["kind", "customCollector"]) {
            let kindPath = "\(path).collector.kind"
            if let text = r.string(c["kind"], kindPath) {
                if let known = MetricsCollectorSpec.Kind(rawValue: text) {
                    kind = known
                } else if ["None", "PrometheusMetric"].contains(text) {
                    r.problem(kindPath, "\(text) collectors are not supported; use StdOut (the default), File, TensorFlowEvent, Custom or Push", at: c["kind"])
                } else {
                    r.problem(kindPath, "\"\(text)\" is not one of StdOut, File, TensorFlowEvent, Custom, Push", at: c["kind"])
                }
            }
            customCollector = c["customCollector"]
            if kind == .custom {
                checkCustomCollector(customCollector, "\(path).collector.customCollector", r)
            } else if let given = customCollector {
                r.problem("\(path).collector.customCollector", "is only read by a Custom collector: remove it, or set kind: Custom", at: given)
            }
        }
        var filePath: String?
        var pathIsFolder: Bool?
        var format = MetricsCollectorSpec.Format.text
        var filters: [String] = []
        if let source = r.mapping(m["source"], "\(path).source", known: ["fileSystemPath", "filter", "httpGet"]) {
            if source["httpGet"] != nil { r.problem("\(path).source.httpGet", "HTTP metric sources are not supported", at: source["httpGet"]) }
            if let fs = r.mapping(source["fileSystemPath"], "\(path).source.fileSystemPath", known: ["path", "kind", "format"]) {
                filePath = r.string(fs["path"], "\(path).source.fileSystemPath.path")
                pathIsFolder = r.choice(fs["kind"], "\(path).source.fileSystemPath.kind", allowed: ["File", "Directory"]).map { $0 == "Directory" }
                format = r.choice(fs["format"], "\(path).source.fileSystemPath.format", allowed: ["TEXT", "JSON"]).flatMap(MetricsCollectorSpec.Format.init) ?? .text
            }
            if let filter = r.mapping(source["filter"], "\(path).source.filter", known: ["metricsFormat"]) {
                for (i, item) in r.sequence(filter["metricsFormat"], "\(path).source.filter.metricsFormat").enumerated() {
                    let itemPath = "\(path).source.filter.metricsFormat[\(i)]"
                    guard let pattern = r.string(item, itemPath, required: true) else { continue }
                    do {
                        _ = try MetricRegex(pattern)
                        filters.append(pattern)
                    } catch {
                        r.problem(itemPath, "\(error)", at: item)
                    }
                }
            }
        }
        if kind == .file, filePath?.isEmpty ?? true {
            r.problem("\(path).source.fileSystemPath.path", "is required for a File collector: the file the trial writes its metrics to")
        }
        if kind == .tensorFlowEvent {
            if filePath?.isEmpty ?? true {
                r.problem("\(path).source.fileSystemPath.path", "is required for a TensorFlowEvent collector: the folder the trial writes its event files to")
            }
            if !filters.isEmpty {
                r.problem("\(path).source.filter", "a TensorFlowEvent collector reads tags, not lines: remove the filter")
            }
        }
        if kind == .push, filePath != nil || !filters.isEmpty {
            r.problem("\(path).source", "a Push collector takes its reports from the trial's requests: remove the source")
        }
        return MetricsCollectorSpec(kind: kind, path: [.stdOut, .push].contains(kind) ? nil : filePath, format: format, metricsFormat: filters,
                                    customCollector: kind == .custom ? customCollector : nil, pathIsFolder: pathIsFolder)
    }

    /// A Custom collector's container: a mapping with a name (a DNS-1123 label) and an image.
    private static func checkCustomCollector(_ node: SpecValue?, _ path: String, _ r: SpecReader) {
        guard let node else {
            r.problem(path, "is required for a Custom collector: the container (name, image, command) that prints the trial's metrics")
            return
        }
        guard case .mapping = node else {
            r.problem(path, "must be a container (a mapping with name and image), found \(node.kindName)", at: node)
            return
        }
        if let name = r.string(node["name"], "\(path).name", required: true), let problem = dns1123LabelProblem(name) {
            r.problem("\(path).name", problem, at: node["name"])
        }
        _ = r.string(node["image"], "\(path).image", required: true)
    }
}

/// Why `name` is not a DNS-1123 label, or `nil` when it is one.
/// A Kubernetes object name of the DNS-subdomain kind (a ConfigMap's, a PersistentVolumeClaim's).
public func isDNSSubdomain(_ name: String) -> Bool {
    func alphanumeric(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
    let bytes = Array(name.utf8)
    guard let first = bytes.first, let last = bytes.last, bytes.count <= 253, alphanumeric(first), alphanumeric(last) else { return false }
    return bytes.allSatisfy { alphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
}

public func dns1123LabelProblem(_ name: String) -> String? {
    let allowed = name.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d }
    if name.count > 63 { return "\"\(name)\" is longer than 63 characters" }
    if !allowed || name.first == "-" || name.last == "-" {
        return "\"\(name)\" is not a DNS-1123 label: use lower-case letters, digits and '-', starting and ending with a letter or digit"
    }
    return nil
}

extension SpecValue {
    var mappingKeys: [String] {
        if case .mapping(let entries, _) = self { return entries.map(\.key) }
        return []
    }

    /// Every scalar below this node with its path.
    func allScalars(prefix: String) -> [(String, String)] {
        switch self {
        case .mapping(let entries, _):
            return entries.flatMap { $0.value.allScalars(prefix: "\(prefix).\($0.key)") }
        case .sequence(let items, _):
            return items.enumerated().flatMap { $1.allScalars(prefix: "\(prefix)[\($0)]") }
        case .scalar(let text, _, _):
            return [(prefix, text)]
        case .null:
            return []
        }
    }
}
