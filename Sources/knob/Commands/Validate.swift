import ArgumentParser
import CommandSupport
import Foundation
import Knob
import KnobAlgorithms
import Kubernetes
import Yams

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a spec and print every problem in it, with where it is.",
        discussion: "Exit code 0 when the spec is valid, 1 when it has problems."
    )

    @Option(name: .shortAndLong, help: ArgumentHelp("The Experiment spec (YAML or JSON); - reads standard input.", valueName: "spec"), completion: .file())
    var file: String

    @OptionGroup var outputOptions: OutputOptions

    @Flag(help: ArgumentHelp("Also print what the first trial would run, with sample parameters: its command line, or its Kubernetes manifest. "
                + "With a cluster configured (--kubeconfig, KUBECONFIG, ~/.kube/config), a Kubernetes spec is also checked against it: "
                + "the trial's kind is one it serves, and a template kept in a ConfigMap is read from it."))
    var render = false

    @OptionGroup(title: "Cluster (for --render)") var kubernetes: KubernetesArguments

    func run() async throws {
        let structured: StructuredFormat? = outputOptions.output == .json ? .json : outputOptions.output == .yaml ? .yaml : nil
        do {
            let (text, loaded) = try Engine.loadSpec(at: file)
            var spec = loaded
            if render {
                // What the experiment's runner checks at its start (a cluster's kinds, a ConfigMap's template), checked now.
                let runner = trialRunners(supervisor: currentExecutablePath(), kubernetes: kubernetes).runner(for: spec)
                spec = try await runner.prepare(spec, specText: text)
                let rendered = try renderFirstTrial(spec)
                if try printStructured(ValidationResult(valid: true, problems: []), as: structured) { return }
                print(rendered)
                return
            }
            _ = try renderFirstTrial(spec)  // a trialSpec knob cannot run is a problem of the spec
            if try printStructured(ValidationResult(valid: true, problems: []), as: structured) { return }
            let runner = spec.trialTemplate.command != nil ? "local trials" : "Kubernetes trials (a \(trialSpecKind(spec)))"
            print("\(file): valid experiment \(spec.name): \(spec.parameters.count) parameter\(spec.parameters.count == 1 ? "" : "s"), "
                  + "\(spec.algorithm.algorithmName)\(spec.earlyStopping.map { ", early stopping \($0.algorithmName)" } ?? ""), \(spec.objective.type.rawValue) \(spec.objective.objectiveMetricName), \(runner)")
        } catch let error as SpecError {
            let result = ValidationResult(valid: false, problems: error.problems.map { .init(path: $0.path, message: $0.message, line: $0.line) })
            if try !printStructured(result, as: structured) { printError("\(file): \(error)") }
            throw ExitCode(1)
        } catch let error as ManifestError {
            try refuse(error.description, structured)
        } catch KnobError.refusedAtStart(_, let message) {
            try refuse(message, structured)
        } catch let error as KnobError {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    /// A problem found past the spec's own validation (making the trial's object, asking the cluster): its message starts with the path it is about.
    private func refuse(_ text: String, _ structured: StructuredFormat?) throws {
        var path = "spec.trialTemplate.trialSpec", message = text
        if message.hasPrefix("spec."), let colon = message.range(of: ": ") {
            path = String(message[..<colon.lowerBound])
            message = String(message[colon.upperBound...])
        }
        let result = ValidationResult(valid: false, problems: [.init(path: path, message: message, line: nil)])
        if try !printStructured(result, as: structured) { printError("\(file): \(path): \(message)") }
        throw ExitCode(1)
    }

    struct ValidationResult: Encodable {
        struct Problem: Encodable {
            var path: String
            var message: String
            var line: Int?
        }

        var valid: Bool
        var problems: [Problem]
    }
}

/// What the first trial of `spec` would run, with parameters drawn by the random suggester (seed 0).
func renderFirstTrial(_ spec: ExperimentSpec) throws -> String {
    let space = spec.searchSpace
    let sample = try RandomSuggester(context: SuggesterContext(space: space, seed: 0)).suggest(count: 1, history: History())[0]
    let assignment = Dictionary(uniqueKeysWithValues: space.parameters.map { ($0.name, sample.assignment[$0.name]!.description) })
    let trialName = "\(spec.name)-1"
    let values = TemplateRenderer.values(for: spec.trialTemplate, assignment: assignment, trialName: trialName,
                                         namespace: spec.namespace ?? "default")
    var lines = ["# trial \(trialName) with sample parameters: "
                 + space.parameters.map { "\($0.name)=\(assignment[$0.name]!)" }.joined(separator: " ")]
    if let command = spec.trialTemplate.command {
        lines.append(command.map { shellQuoted(TemplateRenderer.render($0, values: values)) }.joined(separator: " "))
        if let workingDir = spec.trialTemplate.workingDir { lines.append("# in \(TemplateRenderer.render(workingDir, values: values))") }
        for (name, value) in spec.trialTemplate.env.sorted(by: { $0.key < $1.key }) {
            lines.append("# env \(name)=\(TemplateRenderer.render(value, values: values))")
        }
    }
    if spec.trialTemplate.command == nil, let kubernetes = KubernetesLaunch(spec: spec, values: values) {
        // What knob sends: the trial's name and namespace, its labels, its name in the primary container's environment.
        let launch = TrialLaunch(experimentName: spec.name, trialName: trialName, argv: [], workingDirectory: "", environment: [:],
                                 logPath: "", trialDirectory: "")
        // A TensorFlowEvent sidecar's image is knobd's --tfevent-collector-image: a placeholder stands for it here.
        let final = try TrialManifest(launch, kubernetes: kubernetes, defaultNamespace: "default",
                                      options: KubernetesOptions(tfEventCollectorImage: "<--tfevent-collector-image>"))
        lines.append(try Yams.dump(object: final.object, sortKeys: true))
    } else if let manifest = spec.trialTemplate.trialSpec {
        lines.append(try manifest.rendered(values).yamlText())
    }
    return lines.joined(separator: "\n")
}

/// `Pod` or `batch/v1 Job`, as the trialSpec says.
func trialSpecKind(_ spec: ExperimentSpec) -> String {
    guard case .scalar(let kind, _, _)? = spec.trialTemplate.trialSpec?["kind"] else { return "trialSpec" }
    return kind
}
