import Foundation
import Testing
@testable import KnobAlgorithms
@testable import Knob

/// A Katib-style Kubernetes experiment: strings for numbers, trialParameters, a Job trialSpec,
/// a custom metrics filter.
let katibJobSpec = """
    apiVersion: kubeflow.org/v1beta1
    kind: Experiment
    metadata:
      namespace: kubeflow
      name: random-example
    spec:
      objective:
        type: maximize
        goal: 0.99
        objectiveMetricName: Validation-accuracy
        additionalMetricNames:
          - Train-accuracy
      algorithm:
        algorithmName: random
        algorithmSettings:
          - name: random_state
            value: "10"
      parallelTrialCount: 3
      maxTrialCount: 12
      maxFailedTrialCount: 3
      metricsCollectorSpec:
        collector:
          kind: StdOut
        source:
          filter:
            metricsFormat:
              - "([\\\\w|-]+)\\\\s*=\\\\s*((-?\\\\d+)(\\\\.\\\\d+)?)"
      parameters:
        - name: lr
          parameterType: double
          feasibleSpace:
            min: "0.01"
            max: "0.03"
        - name: num-layers
          parameterType: int
          feasibleSpace:
            min: "2"
            max: "5"
        - name: optimizer
          parameterType: categorical
          feasibleSpace:
            list:
              - sgd
              - adam
              - ftrl
      trialTemplate:
        primaryContainerName: training-container
        trialParameters:
          - name: learningRate
            description: Learning rate for the training model
            reference: lr
          - name: numberLayers
            description: Number of training model layers
            reference: num-layers
          - name: optimizer
            description: Training model optimizer (sdg, adam or ftrl)
            reference: optimizer
        trialSpec:
          apiVersion: batch/v1
          kind: Job
          spec:
            template:
              spec:
                containers:
                  - name: training-container
                    image: docker.io/kubeflowkatib/mxnet-mnist:latest
                    command:
                      - "python3"
                      - "/opt/mxnet-mnist/mnist.py"
                      - "--batch-size=64"
                      - "--lr=${trialParameters.learningRate}"
                      - "--num-layers=${trialParameters.numberLayers}"
                      - "--optimizer=${trialParameters.optimizer}"
                restartPolicy: Never
    """

/// A valid local spec to break in tests.
let localSpec = """
    apiVersion: kubeflow.org/v1beta1
    kind: Experiment
    metadata:
      name: local
    spec:
      objective:
        type: minimize
        objectiveMetricName: loss
      algorithm:
        algorithmName: grid
      maxTrialCount: 4
      parameters:
        - name: x
          parameterType: double
          feasibleSpace: {min: "0.1", max: "0.5", step: "0.1"}
        - name: units
          parameterType: discrete
          feasibleSpace: {list: ["32", "64"]}
      trialTemplate:
        command: [python3, train.py, "--x=${trialParameters.x}", "--units=${trialParameters.units}"]
    """

func problems(_ text: String) -> [String] {
    do {
        _ = try ExperimentSpec.parse(text)
        return []
    } catch {
        return error.problems.map { "\($0.path): \($0.message)" }
    }
}

@Suite struct SpecTests {
    @Test func katibKubernetesExampleParses() throws {
        let spec = try ExperimentSpec.parse(katibJobSpec)
        #expect(spec.name == "random-example" && spec.namespace == "kubeflow")
        #expect(spec.parallelTrialCount == 3 && spec.maxTrialCount == 12 && spec.maxFailedTrialCount == 3)
        #expect(spec.objective.goal == 0.99 && spec.objective.type == .maximize)
        #expect(spec.objective.metricStrategies == ["Validation-accuracy": .max, "Train-accuracy": .latest])
        #expect(spec.algorithm.settingsByName == ["random_state": "10"])
        #expect(spec.parameters.map(\.parameter.kind) == [
            .double(min: 0.01, max: 0.03, step: nil, scale: .linear),
            .int(min: 2, max: 5, step: 1, scale: .linear),
            .categorical(["sgd", "adam", "ftrl"]),
        ])
        #expect(spec.trialTemplate.command == nil && spec.trialTemplate.trialSpec != nil)
        #expect(spec.trialTemplate.primaryContainerName == "training-container")
        #expect(spec.metricsCollector.metricsFormat.count == 1)
    }

    @Test func theMNISTExampleParsesWithItsDefaults() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../examples/mnist/experiment.yaml")
        let spec = try ExperimentSpec.parse(try String(contentsOf: url, encoding: .utf8))
        #expect(spec.name == "mnist" && spec.maxTrialCount == 12 && spec.parallelTrialCount == 2)
        #expect(spec.metricNames == ["accuracy", "loss"])
        #expect(spec.metricsCollector == .stdOut)
        #expect(spec.trialTemplate.command?.first == "python3")
    }

    @Test func theTPEAndEarlyStoppingVariantsOfTheMNISTExampleParse() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../examples/mnist")
        let tpe = try ExperimentSpec.parse(try String(contentsOf: folder.appendingPathComponent("experiment-tpe.yaml"), encoding: .utf8))
        #expect(tpe.algorithm.algorithmName == "tpe" && tpe.parameters[1].parameter.distribution == .normal)
        let early = try ExperimentSpec.parse(try String(contentsOf: folder.appendingPathComponent("experiment-earlystop.yaml"), encoding: .utf8))
        #expect(early.earlyStopping?.algorithmName == "medianstop" && early.maxTrialCount == 24)
    }

    @Test func theBayesianOptimizationVariantOfTheMNISTExampleParses() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../examples/mnist/experiment-gp.yaml")
        let spec = try ExperimentSpec.parse(try String(contentsOf: url, encoding: .utf8))
        #expect(spec.name == "mnist-gp" && spec.algorithm.algorithmName == "bayesianoptimization")
        #expect(spec.algorithm.settingsByName == ["n_initial_points": "5"])
    }

    @Test func numbersMayBeNumbersOrStringsAndJSONWorksToo() throws {
        let yaml = try ExperimentSpec.parse(localSpec.replacingOccurrences(of: "min: \"0.1\", max: \"0.5\", step: \"0.1\"", with: "min: 0.1, max: 0.5, step: 0.1"))
        let quoted = try ExperimentSpec.parse(localSpec)
        #expect(yaml == quoted)
        let json = """
            {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "j"},
             "spec": {"objective": {"type": "maximize", "objectiveMetricName": "acc"},
                      "algorithm": {"algorithmName": "random"}, "maxTrialCount": 3, "parallelTrialCount": "1",
                      "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": 0.001, "max": "0.1", "distribution": "logUniform"}}],
                      "trialTemplate": {"command": ["train", "--lr=${trialParameters.lr}"]}}}
            """
        let spec = try ExperimentSpec.parse(json)
        #expect(spec.parallelTrialCount == 1 && spec.maxTrialCount == 3)
        #expect(spec.parameters[0].parameter.kind == .double(min: 0.001, max: 0.1, step: nil, scale: .log))
        #expect(spec.trialTemplate.trialParameters.map(\.name) == ["lr"], "trialParameters default to the parameters' names")
    }

    @Test func minAboveMaxNamesTheParameterPath() {
        let text = localSpec.replacingOccurrences(of: "min: \"0.1\", max: \"0.5\", step: \"0.1\"", with: "min: \"0.5\", max: \"0.1\"")
        #expect(problems(text).contains("spec.parameters[0].feasibleSpace: min 0.5 must be below max 0.1"))
    }

    @Test func everyProblemIsReportedAtOnceWithItsPath() {
        let text = localSpec
            .replacingOccurrences(of: "type: minimize", with: "type: minimise")
            .replacingOccurrences(of: "maxTrialCount: 4", with: "maxTrialCount: 4\n  parallelTrialCount: 9")
            .replacingOccurrences(of: "{list: [\"32\", \"64\"]}", with: "{list: [\"32\", \"big\"]}")
        let found = problems(text)
        #expect(found.count == 3, "\(found)")
        #expect(found.contains { $0.hasPrefix("spec.objective.type: \"minimise\" is not one of minimize, maximize") })
        #expect(found.contains("spec.parallelTrialCount: 9 must not exceed maxTrialCount 4"))
        #expect(found.contains { $0.hasPrefix("spec.parameters[1].feasibleSpace.list[1]: \"big\" is not a number") })
    }

    @Test func templateReferencesAreChecked() {
        // A placeholder that names no trial parameter.
        let unknown = localSpec.replacingOccurrences(of: "${trialParameters.units}", with: "${trialParameters.unit}")
        let found = problems(unknown)
        #expect(found.contains { $0.hasPrefix("spec.trialTemplate.command[3]: ${trialParameters.unit} is not a trial parameter; did you mean units?") })
        // ...and the parameter it should have used is then unused.
        #expect(found.contains { $0.hasPrefix("spec.parameters[1]: \"units\" is never used") })
        // A trial parameter whose reference is not a search parameter.
        let badReference = katibJobSpec.replacingOccurrences(of: "reference: num-layers", with: "reference: num_layers")
        #expect(problems(badReference).contains {
            $0.hasPrefix("spec.trialTemplate.trialParameters[1].reference: \"num_layers\" is not a parameter in spec.parameters; did you mean num-layers?")
        })
    }

    @Test func katibRulesHold() {
        func broken(_ from: String, _ to: String, in text: String = localSpec) -> [String] {
            problems(text.replacingOccurrences(of: from, with: to))
        }
        #expect(broken("maxTrialCount: 4", "maxTrialCount: 4\n  maxFailedTrialCount: 5") == ["spec.maxFailedTrialCount: 5 must not exceed maxTrialCount 4"])
        #expect(broken("name: local", "name: Local_Exp").first?.hasPrefix("metadata.name: \"Local_Exp\" is not a DNS-1123 label") == true)
        #expect(broken("algorithmName: grid", "algorithmName: grid\n    algorithmSettings:\n      - {name: grid_point, value: \"3\"}")
            .first?.hasPrefix("spec.algorithm.algorithmSettings[0]: grid_point: not a setting of grid") == true)
        #expect(broken("algorithmName: grid", "algorithmName: rnadom").first?.contains("did you mean random?") == true)
        #expect(broken(", step: \"0.1\"", "") == ["spec.parameters[0].feasibleSpace: grid needs a step for a double parameter: set feasibleSpace.step, or the algorithm setting grid_points"])
        #expect(broken("maxTrialCount: 4", "maxTrialCounts: 4") == ["spec.maxTrialCounts: unknown field; did you mean maxTrialCount?"])
        #expect(broken("objectiveMetricName: loss", "objectiveMetricName: loss\n    additionalMetricNames: [loss]") == ["spec.objective.additionalMetricNames[0]: \"loss\" is already the objective metric"])
        #expect(broken("  trialTemplate:\n    command: [python3, train.py, \"--x=${trialParameters.x}\", \"--units=${trialParameters.units}\"]", "").contains("spec.trialTemplate: is required: give a command (argv list) for local trials, or a trialSpec for Kubernetes"))
    }

    @Test func metricsCollectorRegexesMustCompileAndHaveTwoGroups() {
        let base = localSpec + "\n  metricsCollectorSpec:\n    source:\n      filter:\n        metricsFormat:\n"
        let found = problems(base + "          - \"([a-z]+\"\n          - \"(\\\\w+)=\\\\d+\"\n          - \"(?:\\\\w+)=(\\\\d+)\"\n")
        #expect(found.count == 3, "\(found)")
        #expect(found[0].contains("is not a valid regular expression"))
        #expect(found[1].contains("must have exactly two top-level groups") && found[1].contains("it has 1"))
        #expect(found[2].contains("it has 1"))
        #expect(problems(base + "          - \"(?P<name>\\\\w+):\\\\s*((\\\\d+)(\\\\.\\\\d+)?)\"\n").isEmpty)
        let file = localSpec + "\n  metricsCollectorSpec:\n    collector:\n      kind: File\n"
        #expect(problems(file) == ["spec.metricsCollectorSpec.source.fileSystemPath.path: is required for a File collector: the file the trial writes its metrics to"])
    }

    @Test func notYAMLAtAllIsOneClearProblem() {
        let found = problems("spec: [unclosed")
        #expect(found.count == 1 && found[0].contains("not valid YAML"))
        let json = try? ExperimentSpec.parse("{\"spec\": ")
        #expect(json == nil)
        #expect(problems("{\"spec\": ").first?.contains("not valid YAML (nor JSON)") == true)
    }

    @Test func templateRendering() throws {
        let spec = try ExperimentSpec.parse(katibJobSpec)
        let values = TemplateRenderer.values(for: spec.trialTemplate, assignment: ["lr": "0.02", "num-layers": "3", "optimizer": "adam"],
                                             trialName: "t-1", namespace: "kubeflow")
        #expect(values == ["learningRate": "0.02", "numberLayers": "3", "optimizer": "adam"])
        #expect(TemplateRenderer.render("--lr=${trialParameters.learningRate} ${trialParameters.optimizer}x", values: values) == "--lr=0.02 adamx")
        #expect(TemplateRenderer.render("${trialParameters.missing} and ${trialParameters.", values: values) == "${trialParameters.missing} and ${trialParameters.")
        #expect(TemplateRenderer.placeholders(in: "a ${trialParameters.x} b ${trialParameters.y}") == ["x", "y"])
    }
}

@Suite struct DistributionSpecTests {
    static func spec(algorithm: String, min: String = "0.0001") -> String {
        """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata:
          name: distributions
        spec:
          objective:
            type: minimize
            objectiveMetricName: loss
          algorithm:
            algorithmName: \(algorithm)
          maxTrialCount: 4
          parameters:
            - name: momentum
              parameterType: double
              feasibleSpace: {min: "0.5", max: "0.9", distribution: normal}
            - name: lr
              parameterType: double
              feasibleSpace: {min: "\(min)", max: "0.1", distribution: logNormal}
            - name: units
              parameterType: int
              feasibleSpace: {min: "16", max: "256", step: "16", distribution: normal}
          trialTemplate:
            command: [train, "--lr=${trialParameters.lr}", "--momentum=${trialParameters.momentum}", "--units=${trialParameters.units}"]
        """
    }

    @Test(arguments: ["random", "sobol", "tpe", "multivariate-tpe"])
    func normalAndLogNormalAreAcceptedStoredAndReloaded(_ algorithm: String) throws {
        let spec = try ExperimentSpec.parse(Self.spec(algorithm: algorithm))
        #expect(spec.parameters.map(\.parameter) == [
            Parameter(name: "momentum", kind: .double(min: 0.5, max: 0.9, step: nil, scale: .linear), distribution: .normal),
            Parameter(name: "lr", kind: .double(min: 0.0001, max: 0.1, step: nil, scale: .log), distribution: .normal),
            Parameter(name: "units", kind: .int(min: 16, max: 256, step: 16, scale: .linear), distribution: .normal),
        ])
        #expect(spec.parameters.map(\.parameter.katibDistribution) == ["normal", "logNormal", "normal"])
        let reloaded = try JSONDecoder().decode(ExperimentSpec.self, from: JSONEncoder().encode(spec))
        #expect(reloaded == spec)
    }

    @Test func logNormalNeedsAPositiveMin() {
        #expect(problems(Self.spec(algorithm: "random", min: "0")).contains("spec.parameters[1].feasibleSpace.min: logNormal needs min above 0, found 0"))
    }

    @Test(arguments: ["cmaes", "bayesianoptimization"])
    func searchersRefuseNormalParametersWithTheParametersName(_ algorithm: String) {
        let found = problems(Self.spec(algorithm: algorithm))
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("spec.parameters[0].feasibleSpace: \(algorithm) does not draw from distribution normal (parameter momentum)") == true,
                "\(found)")
    }

    @Test func gridListsTheValuesOfANormalParameter() throws {
        let text = Self.spec(algorithm: "grid")
            .replacingOccurrences(of: "min: \"0.5\", max: \"0.9\", distribution: normal", with: "min: \"0.5\", max: \"0.9\", step: \"0.1\", distribution: normal")
            .replacingOccurrences(of: "max: \"0.1\", distribution: logNormal", with: "max: \"0.1\", step: \"0.0001\", distribution: logNormal")
        #expect(problems(text) == [])
    }
}

/// Katib's medianstop example as a user brings it: a Job trial, settings as strings.
let katibMedianStopSpec = """
    apiVersion: kubeflow.org/v1beta1
    kind: Experiment
    metadata:
      namespace: kubeflow
      name: median-stop
    spec:
      objective:
        type: maximize
        goal: 0.99
        objectiveMetricName: Validation-accuracy
        additionalMetricNames: [Train-accuracy]
      algorithm:
        algorithmName: random
      earlyStopping:
        algorithmName: medianstop
        algorithmSettings:
          - name: min_trials_required
            value: "1"
          - name: start_step
            value: "2"
      parallelTrialCount: 2
      maxTrialCount: 15
      maxFailedTrialCount: 3
      parameters:
        - name: lr
          parameterType: double
          feasibleSpace: {min: "0.01", max: "0.5"}
        - name: num-epochs
          parameterType: int
          feasibleSpace: {min: "3", max: "4"}
      trialTemplate:
        retain: true
        primaryContainerName: training-container
        trialParameters:
          - {name: learningRate, description: Learning rate for the training model, reference: lr}
          - {name: numberEpochs, description: Number of epochs to train the model, reference: num-epochs}
        trialSpec:
          apiVersion: batch/v1
          kind: Job
          spec:
            template:
              spec:
                containers:
                  - name: training-container
                    image: docker.io/kubeflowkatib/mxnet-mnist:v0.15.0
                    command: ["python3", "/opt/mxnet-mnist/mnist.py", "--batch-size=64",
                              "--lr=${trialParameters.learningRate}", "--num-epochs=${trialParameters.numberEpochs}"]
                restartPolicy: Never
    """

@Suite struct EarlyStoppingSpecTests {
    @Test func katibsMedianStopExampleParses() throws {
        let spec = try ExperimentSpec.parse(katibMedianStopSpec)
        #expect(spec.earlyStopping == EarlyStoppingSpec(algorithmName: "medianstop", settings: [
            .init(name: "min_trials_required", value: "1"), .init(name: "start_step", value: "2"),
        ]))
        #expect(spec.earlyStopping?.summary == "medianstop (min_trials_required=1, start_step=2)")
    }

    @Test func aSpecWithoutEarlyStoppingHasNone() throws {
        #expect(try ExperimentSpec.parse(katibJobSpec).earlyStopping == nil)
        // A stored spec from before early stopping existed decodes without it.
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(try ExperimentSpec.parse(katibMedianStopSpec))) as! [String: Any]
        json["earlyStopping"] = nil
        let old = try JSONDecoder().decode(ExperimentSpec.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old.earlyStopping == nil && old.name == "median-stop")
    }

    @Test func badRulesAndSettingsAreNamedWithTheirPath() {
        let withRule = { (block: String) in
            katibMedianStopSpec.replacingOccurrences(of: """
                  earlyStopping:
                    algorithmName: medianstop
                    algorithmSettings:
                      - name: min_trials_required
                        value: "1"
                      - name: start_step
                        value: "2"
                """, with: block)
        }
        #expect(problems(withRule("  earlyStopping:\n    algorithmName: medianstp")) == [
            "spec.earlyStopping.algorithmName: unknown early stopping algorithm \"medianstp\"; did you mean medianstop? known: medianstop, successivehalving",
        ])
        #expect(problems(withRule("""
              earlyStopping:
                algorithmName: medianstop
                algorithmSettings:
                  - {name: start_step, value: "4"}
                  - {name: start_step, value: "0"}
            """)).first == "spec.earlyStopping.algorithmSettings[1].name: \"start_step\" is set twice")
        #expect(problems(withRule("""
              earlyStopping:
                algorithmName: medianstop
                algorithmSettings:
                  - {name: min_trials_required, value: "3"}
                  - {name: start_step, value: "-1"}
            """)) == ["spec.earlyStopping.algorithmSettings[1]: start_step: \"-1\" is not a whole number in 1...1000000000"])
        #expect(problems(withRule("""
              earlyStopping:
                algorithmName: successivehalving
                algorithmSettings:
                  - {name: eta, value: "3"}
            """)) == ["spec.earlyStopping.algorithmSettings[0]: eta: not a setting of successivehalving; it accepts min_early_stopping_rate, min_resource, reduction_factor"])
        #expect(problems(withRule("  earlyStopping:\n    algorithmSettings: []")) == ["spec.earlyStopping.algorithmName: is required"])
    }
}

@Suite struct TrialSpecValidationTests {
    /// `katibJobSpec` with its trialSpec replaced.
    func spec(trialSpec: String, trialParameters: String = "", primary: String = "training-container") -> String {
        """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: kinds, namespace: kubeflow}
        spec:
          objective: {type: maximize, objectiveMetricName: accuracy}
          algorithm: {algorithmName: random}
          parameters:
            - {name: lr, parameterType: double, feasibleSpace: {min: "0.01", max: "0.1"}}
          trialTemplate:
            primaryContainerName: \(primary)
            trialParameters:
              - {name: learningRate, reference: lr}
        \(trialParameters)
            trialSpec:
        \(trialSpec.split(separator: "\n").map { "      \($0)" }.joined(separator: "\n"))
        """
    }

    let job = """
        apiVersion: batch/v1
        kind: Job
        metadata:
          namespace: training
          labels: {team: vision, "app.kubernetes.io/name": mnist}
          annotations: {sidecar.istio.io/inject: "false"}
        spec:
          template:
            spec:
              containers:
                - name: training-container
                  image: python:3.11
                  command: [python3, train.py, "--lr=${trialParameters.learningRate}", "--kind=${trialParameters.kind}",
                            "--api=${trialParameters.api}", "--ns=${trialParameters.ns}", "--team=${trialParameters.team}",
                            "--istio=${trialParameters.istio}", "--name=${trialParameters.name}"]
              restartPolicy: Never
        """

    let metadataParameters = """
              - {name: kind, reference: "${trialSpec.Kind}"}
              - {name: api, reference: "${trialSpec.APIVersion}"}
              - {name: ns, reference: "${trialSpec.Namespace}"}
              - {name: team, reference: "${trialSpec.Labels[team]}"}
              - {name: istio, reference: "${trialSpec.Annotations[sidecar.istio.io/inject]}"}
              - {name: name, reference: "${trialSpec.Name}"}
        """

    @Test func metadataReferencesReadTheTrialSpecAsKatibDoes() throws {
        let parsed = try ExperimentSpec.parse(spec(trialSpec: job, trialParameters: metadataParameters))
        let values = TemplateRenderer.values(for: parsed.trialTemplate, assignment: ["lr": "0.05"], trialName: "kinds-1",
                                             namespace: parsed.namespace ?? "default")
        #expect(values == ["learningRate": "0.05", "kind": "Job", "api": "batch/v1", "ns": "training", "team": "vision",
                           "istio": "false", "name": "kinds-1"])
        // A Pod in the experiment's namespace.
        let pod = job.replacingOccurrences(of: "batch/v1", with: "v1").replacingOccurrences(of: "kind: Job", with: "kind: Pod")
            .replacingOccurrences(of: "  namespace: training\n", with: "")
            .replacingOccurrences(of: "spec:\n  template:\n    spec:\n      containers:", with: "spec:\n  containers:")
            .replacingOccurrences(of: "\n        - name", with: "\n    - name").replacingOccurrences(of: "\n          ", with: "\n      ")
            .replacingOccurrences(of: "\n                    ", with: "\n                ").replacingOccurrences(of: "      restartPolicy", with: "  restartPolicy")
        let podSpec = try ExperimentSpec.parse(spec(trialSpec: pod, trialParameters: metadataParameters))
        let podValues = TemplateRenderer.values(for: podSpec.trialTemplate, assignment: [:], trialName: "kinds-2", namespace: "kubeflow")
        #expect(podValues["kind"] == "Pod" && podValues["api"] == "v1" && podValues["ns"] == "kubeflow")
    }

    @Test func aLabelOrAnnotationTheTemplateDoesNotDefineIsASpecError() {
        let found = problems(spec(trialSpec: job, trialParameters: metadataParameters
            .replacingOccurrences(of: "Labels[team]", with: "Labels[owner]")
            .replacingOccurrences(of: "Annotations[sidecar.istio.io/inject]", with: "Annotations[note]")))
        #expect(found == [
            "spec.trialTemplate.trialParameters[4].reference: the trialSpec defines no label \"owner\" (metadata.labels: app.kubernetes.io/name, team)",
            "spec.trialTemplate.trialParameters[5].reference: the trialSpec defines no annotation \"note\" (metadata.annotations: sidecar.istio.io/inject)",
        ])
    }

    @Test func kindsKnobDoesNotRunAreRefusedByValidationWithTheOtherProblems() {
        let workflow = """
            apiVersion: argoproj.io/v1alpha1
            kind: Workflow
            spec:
              entrypoint: train
              templates:
                - name: train
                  container: {image: python:3.11, command: [python3, "--lr=${trialParameters.learningRate}"]}
            """
        let found = problems(spec(trialSpec: workflow).replacingOccurrences(of: "min: \"0.01\"", with: "min: \"0.5\""))
        // Nothing says when a Workflow has ended: its conditions are asked for, with the spec's other problems.
        #expect(found.contains { $0.hasPrefix("spec.trialTemplate.successCondition: successCondition and failureCondition are required for argoproj.io/v1alpha1 Workflow trials") }, "\(found)")
        // Given both, with Katib's conditions for Argo, the Workflow runs.
        let argo = spec(trialSpec: workflow, primary: "main").replacingOccurrences(of: "    primaryContainerName: main\n", with: """
                primaryContainerName: main
                successCondition: status.[@this].#(phase=="Succeeded")#
                failureCondition: status.[@this].#(phase=="Failed")#

            """)
        #expect(problems(argo) == [], "\(argo)")
        // A collector in a container beside the trial's has no pod template to go into: refused by validation, not
        // only when the trial's Workflow is made.
        for (kind, collector) in [("File", "fileSystemPath: {path: /var/log/katib/metrics.log, kind: File}"),
                                  ("TensorFlowEvent", "fileSystemPath: {path: /tb, kind: Directory}"),
                                  ("Custom", "fileSystemPath: {path: /tmp/m.log, kind: File}")] {
            let custom = kind == "Custom" ? ", customCollector: {name: c, image: busybox}" : ""
            let withCollector = argo + "\n  metricsCollectorSpec:\n    collector: {kind: \(kind)\(custom)}\n    source: {\(collector)}\n"
            #expect(problems(withCollector) == [
                "spec.metricsCollectorSpec.collector.kind: a \(kind) collector runs in a container beside the trial's, and a Workflow's trialSpec "
                    + "has no pod template knob can add it to; print the metrics to standard output (StdOut) or push them (Push)",
            ], "\(kind)")
            // A Job has a pod template for it.
            let jobSpec = spec(trialSpec: job, trialParameters: metadataParameters)
                + "\n  metricsCollectorSpec:\n    collector: {kind: \(kind)\(custom)}\n    source: {\(collector)}\n"
            #expect(problems(jobSpec) == [], "\(kind) on a Job")
        }
        #expect(problems(argo.replacingOccurrences(of: #"#(phase=="Failed")#"#, with: #"#(phase=="Failed""#)) == [
            #"spec.trialTemplate.failureCondition: "status.[@this].#(phase=="Failed"" is not a GJSON path knob reads: at character 16: '#(' is never closed"#,
        ])
        #expect(found.contains { $0.hasPrefix("spec.parameters[0].feasibleSpace: min 0.5 must be below max 0.1") }, "every problem is listed: \(found)")
        #expect(problems(spec(trialSpec: job, trialParameters: metadataParameters, primary: "trainer")) == [
            "spec.trialTemplate.primaryContainerName: \"trainer\" is not a container of the trialSpec (its containers: training-container)",
        ])
        #expect(problems(spec(trialSpec: job.replacingOccurrences(of: "restartPolicy: Never", with: "restartPolicy: Always"),
                              trialParameters: metadataParameters)) == [
            "spec.trialTemplate.trialSpec.spec.template.spec.restartPolicy: Always would run the trial again each time it ends; use Never (or OnFailure)",
        ])
    }

    @Test func metadataOfATrialSpecNeedsOne() {
        let local = localSpec.replacingOccurrences(
            of: "  trialTemplate:\n",
            with: "  trialTemplate:\n    trialParameters:\n      - {name: x, reference: x}\n      - {name: units, reference: units}\n"
                + "      - {name: kind, reference: \"${trialSpec.Kind}\"}\n"
        ).replacingOccurrences(of: "\"--units=${trialParameters.units}\"]", with: "\"--units=${trialParameters.units}\", \"${trialParameters.kind}\"]")
        #expect(problems(local) == [
            "spec.trialTemplate.trialParameters[2].reference: ${trialSpec.Kind} reads the trialSpec, and this template has none (it runs a command)",
        ])
    }
}

@Suite struct TensorFlowEventSpecTests {
    func collector(_ text: String, spec: String = localSpec) -> [String] {
        problems(spec + "\n  metricsCollectorSpec:\n" + text.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n") + "\n")
    }

    @Test func aTensorFlowEventCollectorNeedsItsFolderAndTakesNoFilter() throws {
        #expect(collector("collector: {kind: TensorFlowEvent}\nsource:\n  fileSystemPath: {path: /tmp/tb, kind: Directory}").isEmpty)
        let spec = try ExperimentSpec.parse(localSpec + "\n  metricsCollectorSpec:\n    collector: {kind: TensorFlowEvent}\n    source:\n      fileSystemPath: {path: tb, kind: Directory}\n")
        #expect(spec.metricsCollector.kind == .tensorFlowEvent && spec.metricsCollector.path == "tb")
        #expect(collector("collector: {kind: TensorFlowEvent}") == [
            "spec.metricsCollectorSpec.source.fileSystemPath.path: is required for a TensorFlowEvent collector: the folder the trial writes its event files to",
        ])
        #expect(collector("collector: {kind: TensorFlowEvent}\nsource:\n  fileSystemPath: {path: tb}\n  filter: {metricsFormat: [\"(\\\\w+)=(\\\\d+)\"]}") == [
            "spec.metricsCollectorSpec.source.filter: a TensorFlowEvent collector reads tags, not lines: remove the filter",
        ])
        #expect(collector("collector: {kind: PrometheusMetric}") == [
            "spec.metricsCollectorSpec.collector.kind: PrometheusMetric collectors are not supported; use StdOut (the default), File, TensorFlowEvent, Custom or Push",
        ])
    }

    @Test func aCustomCollectorIsAContainerBesideAKubernetesTrial() {
        #expect(collector("collector: {kind: Custom, customCollector: {name: collect, image: busybox}}") == [
            "spec.metricsCollectorSpec.collector.kind: a Custom collector is a container beside a Kubernetes trial; "
                + "a local trial's metrics come from its output (StdOut), a File, TensorFlowEvent or Push",
        ])
        let kube = { (text: String) in self.collector(text, spec: katibMedianStopSpec) }
        #expect(kube("collector: {kind: Custom}") == [
            "spec.metricsCollectorSpec.collector.customCollector: is required for a Custom collector: the container (name, image, command) that prints the trial's metrics",
        ])
        #expect(kube("collector: {kind: Custom, customCollector: {name: Collect_1, image: \"\"}}") == [
            "spec.metricsCollectorSpec.collector.customCollector.name: \"Collect_1\" is not a DNS-1123 label: use lower-case letters, digits and '-', starting and ending with a letter or digit",
            "spec.metricsCollectorSpec.collector.customCollector.image: must not be empty",
        ])
        #expect(kube("collector: {kind: File, customCollector: {name: c, image: busybox}}\nsource: {fileSystemPath: {path: /var/m.log}}") == [
            "spec.metricsCollectorSpec.collector.customCollector: is only read by a Custom collector: remove it, or set kind: Custom",
        ])
        #expect(kube("collector: {kind: Push}\nsource: {fileSystemPath: {path: /m.log}}") == [
            "spec.metricsCollectorSpec.source: a Push collector takes its reports from the trial's requests: remove the source",
        ])
    }

    @Test func onKubernetesItsPathIsAFolderOfItsOwnInTheContainer() {
        let kube = { (path: String) in
            problems(katibMedianStopSpec + "\n  metricsCollectorSpec:\n    collector: {kind: File}\n    source:\n      fileSystemPath: {path: \(path)}\n")
        }
        #expect(kube("/var/log/katib/metrics.log").isEmpty)
        #expect(kube("metrics.log") == [
            "spec.metricsCollectorSpec.source.fileSystemPath.path: \"metrics.log\" must be an absolute path inside the trial's container (e.g. /var/log/katib/metrics.log)",
        ])
        #expect(kube("/metrics.log") == [
            "spec.metricsCollectorSpec.source.fileSystemPath.path: \"/metrics.log\": the collector shares the file's folder with the trial's container, "
                + "and that cannot be /; put the file in a folder of its own (e.g. /var/log/katib/metrics.log)",
        ])
        #expect(problems(katibMedianStopSpec + "\n  metricsCollectorSpec:\n    collector: {kind: TensorFlowEvent}\n    source:\n      fileSystemPath: {path: /tb, kind: Directory}\n").isEmpty)
    }
}
