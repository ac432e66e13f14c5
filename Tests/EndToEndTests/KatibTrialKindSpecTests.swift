import Foundation
import Kubernetes
import Testing

/// Experiments shaped as Katib's v1beta1 examples of each trial kind are (the training operator's four kinds, a
/// TrainJob, an Argo Workflow, a Tekton PipelineRun), with their trial templates' fields as those examples use them.
enum KatibKindSpecs {
    static func experiment(_ name: String, parameters: String = lrParameter, collector: String = "", template: String) -> String {
        """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata:
          namespace: kubeflow
          name: \(name)
        spec:
          objective:
            type: maximize
            goal: 0.99
            objectiveMetricName: accuracy
          algorithm:
            algorithmName: random
          parallelTrialCount: 2
          maxTrialCount: 6
          maxFailedTrialCount: 3
        \(collector)
          parameters:
        \(parameters)
          trialTemplate:
        \(template)
        """
    }

    static let lrParameter = """
            - name: lr
              parameterType: double
              feasibleSpace:
                min: "0.01"
                max: "0.05"
        """

    static let lrAndMomentum = lrParameter + """

            - name: momentum
              parameterType: double
              feasibleSpace:
                min: "0.5"
                max: "0.9"
        """

    static let pytorchJob = experiment("pytorchjob-mnist", parameters: lrAndMomentum, template: """
            primaryContainerName: pytorch
            trialParameters:
              - {name: learningRate, description: Learning rate, reference: lr}
              - {name: momentum, description: Momentum, reference: momentum}
            trialSpec:
              apiVersion: kubeflow.org/v1
              kind: PyTorchJob
              spec:
                pytorchReplicaSpecs:
                  Master:
                    replicas: 1
                    restartPolicy: OnFailure
                    template:
                      spec:
                        containers:
                          - name: pytorch
                            image: registry.example.com/pytorch-mnist-cpu:1
                            command: [python3, /opt/mnist.py, --epochs=1, "--lr=${trialParameters.learningRate}", "--momentum=${trialParameters.momentum}"]
                  Worker:
                    replicas: 1
                    restartPolicy: OnFailure
                    template:
                      spec:
                        containers:
                          - name: pytorch
                            image: registry.example.com/pytorch-mnist-cpu:1
                            command: [python3, /opt/mnist.py, --epochs=1, "--lr=${trialParameters.learningRate}", "--momentum=${trialParameters.momentum}"]
        """)

    static let tfJob = experiment("tfjob-mnist-with-summaries", collector: """
          metricsCollectorSpec:
            source:
              fileSystemPath: {path: /mnist-with-summaries-logs/test, kind: Directory}
            collector: {kind: TensorFlowEvent}
        """, template: """
            primaryContainerName: tensorflow
            primaryPodLabels: {training.kubeflow.org/replica-type: worker}
            trialParameters:
              - {name: learningRate, reference: lr}
            trialSpec:
              apiVersion: kubeflow.org/v1
              kind: TFJob
              spec:
                tfReplicaSpecs:
                  Worker:
                    replicas: 2
                    restartPolicy: OnFailure
                    template:
                      spec:
                        containers:
                          - name: tensorflow
                            image: registry.example.com/tf-mnist-with-summaries:1
                            command: [python, /opt/mnist.py, --epochs=1, "--learning-rate=${trialParameters.learningRate}", --log-path=/mnist-with-summaries-logs]
        """)

    static let mpiJob = experiment("mpijob-horovod", template: """
            primaryPodLabels: {mpi-job-role: launcher}
            primaryContainerName: mpi-launcher
            successCondition: status.conditions.#(type=="Succeeded")#|#(status=="True")#
            failureCondition: status.conditions.#(type=="Failed")#|#(status=="True")#
            trialParameters:
              - {name: learningRate, reference: lr}
            trialSpec:
              apiVersion: kubeflow.org/v1
              kind: MPIJob
              spec:
                slotsPerWorker: 1
                cleanPodPolicy: Running
                mpiReplicaSpecs:
                  Launcher:
                    replicas: 1
                    template:
                      spec:
                        containers:
                          - name: mpi-launcher
                            image: registry.example.com/mpi-horovod-mnist:1
                            command: [mpirun]
                            args: [-np, "2", python, /examples/mnist.py, --lr, "${trialParameters.learningRate}"]
                  Worker:
                    replicas: 2
                    template:
                      spec:
                        containers:
                          - name: mpi-worker
                            image: registry.example.com/mpi-horovod-mnist:1
        """)

    static let xgboostJob = experiment("xgboostjob-lightgbm", collector: """
          metricsCollectorSpec:
            source:
              filter:
                metricsFormat:
                  - "(\\\\w+\\\\s\\\\w+)\\\\s:\\\\s((-?\\\\d+)(\\\\.\\\\d+)?)"
        """, template: """
            primaryContainerName: xgboost
            trialParameters:
              - {name: learningRate, reference: lr}
            trialSpec:
              apiVersion: kubeflow.org/v1
              kind: XGBoostJob
              spec:
                xgbReplicaSpecs:
                  Master:
                    replicas: 1
                    restartPolicy: Never
                    template:
                      spec:
                        containers:
                          - name: xgboost
                            image: registry.example.com/xgboost-lightgbm:1
                            ports: [{containerPort: 9991, name: xgboostjob-port}]
                            args: [--job_type=Train, "--learning_rate=${trialParameters.learningRate}"]
                  Worker:
                    replicas: 2
                    restartPolicy: ExitCode
                    template:
                      spec:
                        containers:
                          - name: xgboost
                            image: registry.example.com/xgboost-lightgbm:1
                            ports: [{containerPort: 9991, name: xgboostjob-port}]
                            args: [--job_type=Train, "--learning_rate=${trialParameters.learningRate}"]
        """)

    static let trainJob = experiment("trainjob-pytorch", parameters: lrAndMomentum, template: """
            primaryContainerName: node
            trialParameters:
              - {name: learningRate, reference: lr}
              - {name: momentum, reference: momentum}
            trialSpec:
              apiVersion: trainer.kubeflow.org/v1alpha1
              kind: TrainJob
              spec:
                runtimeRef: {name: torch-distributed}
                trainer:
                  numNodes: 2
                  image: registry.example.com/pytorch-mnist:1
                  command: [python3, /opt/mnist.py, "--lr=${trialParameters.learningRate}", "--momentum=${trialParameters.momentum}"]
        """)

    static let argoWorkflow = experiment("katib-argo-workflow", template: """
            retain: true
            primaryPodLabels: {katib.kubeflow.org/model-training: "true"}
            primaryContainerName: main
            successCondition: status.[@this].#(phase=="Succeeded")#
            failureCondition: status.[@this].#(phase=="Failed")#
            trialParameters:
              - {name: learningRate, reference: lr}
            trialSpec:
              apiVersion: argoproj.io/v1alpha1
              kind: Workflow
              spec:
                serviceAccountName: argo
                entrypoint: hp-workflow
                templates:
                  - name: hp-workflow
                    steps:
                      - - {name: data-preprocessing, template: gen-epochs}
                      - - name: model-training
                          template: model-training
                          arguments:
                            parameters: [{name: epochs, value: "{{steps.data-preprocessing.outputs.result}}"}]
                  - name: gen-epochs
                    script: {image: python:alpine3.6, command: [python], source: "print(5)"}
                  - name: model-training
                    metadata: {labels: {katib.kubeflow.org/model-training: "true"}}
                    inputs: {parameters: [{name: epochs}]}
                    container:
                      name: model-training
                      image: registry.example.com/pytorch-mnist-cpu:1
                      command: [python3, /opt/mnist.py, "--lr=${trialParameters.learningRate}", "--epochs={{inputs.parameters.epochs}}"]
        """)

    /// Tekton's example as Katib ships it: its model step reads `$(trialParameters.lr)`, which is no Katib placeholder,
    /// so the trial parameter learningRate is used nowhere; Katib's webhook refuses it for that too.
    static let tektonPipelineRun = experiment("tekton-pipelinerun", template: """
            retain: true
            primaryPodLabels: {tekton.dev/pipelineTask: model-training}
            primaryContainerName: step-model-training
            successCondition: status.conditions.#(type=="Succeeded")#|#(status=="True")#
            failureCondition: status.conditions.#(type=="Succeeded")#|#(status=="False")#
            trialParameters:
              - {name: learningRate, reference: lr}
            trialSpec:
              apiVersion: tekton.dev/v1beta1
              kind: PipelineRun
              spec:
                params:
                  - {name: lr, value: "0.01"}
                pipelineSpec:
                  params: [{name: lr}]
                  tasks:
                    - name: model-training
                      params: [{name: lr, value: $(params.lr)}]
                      taskSpec:
                        params: [{name: lr}]
                        steps:
                          - name: model-training
                            image: registry.example.com/pytorch-mnist-cpu:1
                            command: [python3, /opt/mnist.py, "--lr=$(trialParameters.lr)"]
        """)

    static let configMapSource = experiment("trial-configmap-source", template: """
            primaryContainerName: training-container
            successCondition: status.conditions.#(type=="Complete")#|#(status=="True")#
            failureCondition: status.conditions.#(type=="Failed")#|#(status=="True")#
            trialParameters:
              - {name: learningRate, reference: lr}
            configMap:
              configMapName: trial-templates
              configMapNamespace: kubeflow
              templatePath: defaultTrialTemplate.yaml
        """)
}

@Suite struct KatibTrialKindSpecTests {
    /// Each validates (table and JSON agree, exit 0) and renders the object its first trial would create, with
    /// knob's labels on the object and on every pod template in it, and knob's environment in the primary container.
    @Test(arguments: [
        ("pytorchjob", KatibKindSpecs.pytorchJob, "PyTorchJob", 2),
        ("tfjob", KatibKindSpecs.tfJob, "TFJob", 1),
        ("mpijob", KatibKindSpecs.mpiJob, "MPIJob", 2),
        ("xgboostjob", KatibKindSpecs.xgboostJob, "XGBoostJob", 2),
        ("trainjob", KatibKindSpecs.trainJob, "TrainJob", 0),
        ("workflow", KatibKindSpecs.argoWorkflow, "Workflow", 0),
    ])
    func katibsExampleOfEachKindValidatesAndRenders(_ name: String, _ spec: String, _ kind: String, _ podTemplates: Int) async throws {
        let directory = makeTemporaryDirectory()
        try write(spec, to: "\(directory)/\(name).yaml")
        let table = try await knob(["validate", "-f", "\(directory)/\(name).yaml"])
        #expect(table.status == 0 && table.stdout.contains("valid experiment"), "\(table.stderr)")
        let asJSON = try await knob(["validate", "-f", "\(directory)/\(name).yaml", "-o", "json"])
        #expect(asJSON.status == 0)
        #expect((try json(asJSON.stdout) as? [String: Any])?["valid"] as? Bool == true)

        let render = try await knob(["validate", "-f", "\(directory)/\(name).yaml", "--render"])
        #expect(render.status == 0, "\(render.stderr)")
        #expect(render.stdout.contains("kind: \(kind)"), "\(render.stdout)")
        #expect(!render.stdout.contains("${trialParameters."), "every placeholder is filled")
        // The trial's labels: once on the object, once on each pod template inside it.
        let labelled = render.stdout.components(separatedBy: "katib.kubeflow.org/trial: ").count - 1
        #expect(labelled == 1 + podTemplates, "\(render.stdout)")
        if podTemplates > 0 { #expect(render.stdout.contains("KATIB_TRIAL_NAME")) }
        if kind == "TFJob" {
            // The TensorFlowEvent collector runs beside the trainer in the pods of its template.
            #expect(render.stdout.contains("knob-metrics-collector") && render.stdout.contains("tfevents"))
        }
    }

    /// Tekton's example uses `$(trialParameters.lr)`, not `${trialParameters.learningRate}`: a mistake Katib's own
    /// webhook refuses too. knob says which parameter is unused, alike in the table and in JSON, with exit 1.
    @Test func tektonsExampleIsRefusedForTheParameterItNeverUses() async throws {
        let directory = makeTemporaryDirectory()
        try write(KatibKindSpecs.tektonPipelineRun, to: "\(directory)/tekton.yaml")
        let problem = "spec.trialTemplate.trialParameters[0]: \"learningRate\" is never used"
        let table = try await knob(["validate", "-f", "\(directory)/tekton.yaml"])
        #expect(table.status == 1 && table.stderr.contains(problem), "\(table.stderr)")
        let asJSON = try await knob(["validate", "-f", "\(directory)/tekton.yaml", "-o", "json"])
        #expect(asJSON.status == 1)
        let result = try #require(try json(asJSON.stdout) as? [String: Any])
        let listed = (result["problems"] as? [[String: Any]])?.map { "\($0["path"] ?? ""): \($0["message"] ?? "")" } ?? []
        #expect(result["valid"] as? Bool == false && listed.contains { $0.hasPrefix(problem) }, "\(listed)")
        // Fixed as Katib's documentation writes it, it validates and renders.
        try write(KatibKindSpecs.tektonPipelineRun.replacingOccurrences(of: "$(trialParameters.lr)", with: "${trialParameters.learningRate}"),
                  to: "\(directory)/tekton.yaml")
        let fixed = try await knob(["validate", "-f", "\(directory)/tekton.yaml", "--render"])
        #expect(fixed.status == 0 && fixed.stdout.contains("kind: PipelineRun") && fixed.stdout.contains("--lr=0.0"), "\(fixed.stderr)")
    }

    /// A ConfigMap's template validates without a cluster (it is checked when read); rendering it needs the cluster.
    @Test func aConfigMapTemplateValidatesAndRendersOnlyWithTheCluster() async throws {
        let directory = makeTemporaryDirectory()
        try write(KatibKindSpecs.configMapSource, to: "\(directory)/configmap.yaml")
        let table = try await knob(["validate", "-f", "\(directory)/configmap.yaml"])
        #expect(table.status == 0, "\(table.stderr)")
        let render = try await knob(["validate", "-f", "\(directory)/configmap.yaml", "--render", "--kubeconfig", "\(directory)/none"])
        #expect(render.status == 1 && render.stderr.contains("the trial template is in ConfigMap kubeflow/trial-templates"), "\(render.stderr)")

        let server = try await KubeAPIServer.start()
        defer { server.stop() }
        try await server.client.request("POST", "/api/v1/namespaces/kubeflow/configmaps", body: [
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "trial-templates"],
            "data": ["defaultTrialTemplate.yaml": """
                apiVersion: batch/v1
                kind: Job
                spec:
                  template:
                    spec:
                      containers:
                        - name: training-container
                          image: registry.example.com/mnist:1
                          command: [python3, /opt/mnist.py, "--lr=${trialParameters.learningRate}"]
                      restartPolicy: Never
                """],
        ])
        let rendered = try await knob(["validate", "-f", "\(directory)/configmap.yaml", "--render", "--kubeconfig", server.kubeconfig])
        #expect(rendered.status == 0 && rendered.stdout.contains("kind: Job") && rendered.stdout.contains("--lr=0.0"), "\(rendered.stderr)")
        // A template that does not fit the spec (a parameter it never uses) is refused with the ConfigMap named.
        try await server.client.request("DELETE", "/api/v1/namespaces/kubeflow/configmaps/trial-templates")
        try await server.client.request("POST", "/api/v1/namespaces/kubeflow/configmaps", body: [
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "trial-templates"],
            "data": ["defaultTrialTemplate.yaml": "apiVersion: batch/v1\nkind: Job\nspec: {template: {spec: {containers: [{name: training-container, image: x}]}}}\n"],
        ])
        let unfit = try await knob(["validate", "-f", "\(directory)/configmap.yaml", "--render", "--kubeconfig", server.kubeconfig, "-o", "json"])
        #expect(unfit.status == 1, "\(unfit.stdout)")
        #expect(unfit.stdout.contains("does not fit the spec") && unfit.stdout.contains("learningRate"), "\(unfit.stdout)")
    }
}
