import Foundation
import Knob
import KnobClient
import Kubernetes
import Store
import Testing

/// The Kubernetes API test server (Tests/kube-apiserver), started for one test on loopback with
/// TLS and client-certificate auth; it runs each pod's container command as a local process.
struct KubeAPIServer {
    let directory: String
    let process: any RunningTrial
    var kubeconfig: String { "\(directory)/kubeconfig" }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../kube-apiserver/kube_apiserver.py").standardized.path

    /// Starts the server with these fault rules (JSON, see the script) and waits until it listens.
    static func start(faults: String = "[]") async throws -> KubeAPIServer {
        let directory = makeTemporaryDirectory("kube-api")
        let process = try await LocalRunner().start(TrialLaunch(
            experimentName: "tests", trialName: "kube-api", argv: ["python3", script, "--dir", directory, "--faults", faults],
            workingDirectory: directory, environment: [:], logPath: "\(directory)/server.log", trialDirectory: "\(directory)/run"))
        let server = KubeAPIServer(directory: directory, process: process)
        // Up to a minute: a loaded machine starts Python slowly.
        for _ in 0..<1200 {
            if let log = try? String(contentsOfFile: "\(directory)/server.log", encoding: .utf8), log.contains("listening on") { return server }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the Kubernetes API test server did not start:\n\((try? String(contentsOfFile: "\(directory)/server.log", encoding: .utf8)) ?? "")")
        throw CancellationError()
    }

    /// Stops the server (it kills the pods' processes as it goes). Synchronous, so a `defer` runs it
    /// before the test ends, also when the test throws.
    func stop() {
        if let pgid = process.handle["pgid"].flatMap(Int32.init) { kill(-pgid, SIGTERM) }
    }

    /// Every object knob created, with whether it passed `kubernetes-validate` (strict, the official schemas).
    func created() throws -> [(object: [String: Any], valid: Bool, message: String)] {
        let text = (try? String(contentsOfFile: "\(directory)/created.jsonl", encoding: .utf8)) ?? ""
        return try text.split(separator: "\n").map { line in
            let entry = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return (entry["object"] as? [String: Any] ?? [:], entry["valid"] as? Bool ?? false, entry["message"] as? String ?? "")
        }
    }

    var client: KubeClient {
        get throws { KubeClient(try ClusterAccess.fromKubeconfig(files: [kubeconfig])) }
    }
}

/// The test API server and a knobd, on a home of its own, that runs trials on it.
struct KubeCluster {
    let server: KubeAPIServer
    let daemon: DaemonProcess

    static func start(faults: String = "[]", daemonArguments: [String] = []) async throws -> KubeCluster {
        let server = try await KubeAPIServer.start(faults: faults)
        do {
            let daemon = try await DaemonProcess.start(home: makeTemporaryDirectory(),
                                                       arguments: ["--kubeconfig", server.kubeconfig] + daemonArguments)
            return KubeCluster(server: server, daemon: daemon)
        } catch {
            server.stop()
            throw error
        }
    }

    /// Synchronous, so a `defer` runs it before the test ends, also when the test throws.
    func stop() {
        kill(daemon.pid, SIGTERM)
        server.stop()
    }
}

/// The MNIST trainer of examples/, on a small subset so a trial takes a second or two.
let mnistTrainer = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../examples/mnist/train.py").standardized.path

func kubeSpec(_ name: String, trials: Int, parallel: Int = 2, maxFailed: Int = 3, algorithm: String = "random",
              trialSpec: String) -> String {
    """
    apiVersion: kubeflow.org/v1beta1
    kind: Experiment
    metadata:
      name: \(name)
    spec:
      objective:
        type: maximize
        objectiveMetricName: accuracy
        additionalMetricNames: [loss]
      algorithm:
        algorithmName: \(algorithm)
      parallelTrialCount: \(parallel)
      maxTrialCount: \(trials)
      maxFailedTrialCount: \(maxFailed)
      parameters:
        - name: lr
          parameterType: double
          feasibleSpace: {min: "0.01", max: "0.05"}
        - name: momentum
          parameterType: double
          feasibleSpace: {min: "0.5", max: "0.9"}
      trialTemplate:
        primaryContainerName: training-container
        trialParameters:
          - name: learningRate
            reference: lr
          - name: momentum
            reference: momentum
        trialSpec:
    \(trialSpec.split(separator: "\n", omittingEmptySubsequences: false).map { "      \($0)" }.joined(separator: "\n"))
    """
}

/// examples/mnist/experiment-k8s.yaml, with the trainer's path on this machine and a small subset.
func exampleJobSpec() throws -> String {
    let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../examples/mnist/experiment-k8s.yaml").standardized.path
    var text = try String(contentsOfFile: example, encoding: .utf8)
    for (from, to) in [("/opt/knob/train.py", mnistTrainer), ("- \"--epochs=2\"", "- \"--epochs=1\"\n" + String(repeating: " ", count: 18) + "- \"--train-limit=1500\""),
                       ("maxTrialCount: 12", "maxTrialCount: 3"), ("parallelTrialCount: 3", "parallelTrialCount: 2")] {
        guard text.contains(from) else { throw CancellationError() }
        text = text.replacingOccurrences(of: from, with: to)
    }
    return text
}

/// The same as a bare Pod.
let mnistPod = """
    apiVersion: v1
    kind: Pod
    metadata:
      annotations: {sidecar.istio.io/inject: "false"}
    spec:
      containers:
        - name: training-container
          image: docker.io/kubeflowkatib/pytorch-mnist-cpu:latest
          command: ["python3", "\(mnistTrainer)", "--epochs=2", "--train-limit=1500", "--test-limit=300",
                    "--lr=${trialParameters.learningRate}", "--momentum=${trialParameters.momentum}"]
          env: [{name: OMP_NUM_THREADS, value: "1"}, {name: OPENBLAS_NUM_THREADS, value: "1"}]
    """

/// A trainer that prints one `accuracy=` line every `pause` seconds, then exits with `code`.
func scriptPod(lines: Int = 4, pause: Double = 0.1, code: Int = 0, image: String = "python:3.11") -> String {
    let script = "import sys, time\\nfor i in range(1, \(lines + 1)):\\n    print(f'step {i} accuracy={i / 10:.2f} loss={1 / i:.3f}', flush=True)\\n    time.sleep(\(pause))\\nsys.exit(\(code))\\n"
    return """
        apiVersion: v1
        kind: Pod
        spec:
          containers:
            - name: training-container
              image: \(image)
              command: ["python3", "-c", "\(script)", "${trialParameters.learningRate}", "${trialParameters.momentum}"]
        """
}

/// Starts knobd on the server, submits `spec`, and SIGKILLs it as soon as `ready` holds for the
/// experiment's stored trials (polled every 0.1 s, at most `tries` times). Returns the trials that
/// made `ready` hold, or nil when it never did.
func knobdKilledWhen(_ server: KubeAPIServer, home: String, experiment: String, tries: Int, spec: String,
                     _ ready: ([(trial: TrialRecord, reports: [MetricRecord])]) -> Bool) async throws -> [(trial: TrialRecord, reports: [MetricRecord])]? {
    let daemon = try await DaemonProcess.start(home: home, arguments: ["--kubeconfig", server.kubeconfig])
    defer { kill(daemon.pid, SIGKILL) }
    try await submit(daemon, spec)
    var seen: [(trial: TrialRecord, reports: [MetricRecord])]?
    for _ in 0..<tries {
        let trials = try await storedTrials(home, experiment)
        if ready(trials) { seen = trials; break }
        try await Task.sleep(for: .milliseconds(100))
    }
    kill(daemon.pid, SIGKILL)
    _ = await daemon.process.wait()
    return seen
}

/// The names of the pods in the default namespace, read again (every 0.1 s, 5 s at most) until they are `expected`.
func podNames(_ server: KubeAPIServer, settlingOn expected: [String]) async throws -> [String] {
    let client = try server.client
    var names: [String] = []
    for _ in 0..<50 {
        let pods = try await client.request("GET", "/api/v1/namespaces/default/pods")
        names = ((pods["items"] as? [[String: Any]]) ?? []).compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String }
        if names == expected { break }
        try await Task.sleep(for: .milliseconds(100))
    }
    return names
}

/// Waits for the experiment to end, through the daemon.
func waitForEnd(_ daemon: DaemonProcess, _ name: String, timeout: Duration = .seconds(120)) async throws -> [String: Any] {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        let response = try await daemon.client.request("GET", "/v1/experiments/\(name)")
        let view = try #require(try json(response.text) as? [String: Any])
        if let status = view["status"] as? String, ["Succeeded", "Failed", "Stopped"].contains(status) { return view }
        try await Task.sleep(for: .milliseconds(200))
    }
    Issue.record("experiment \(name) did not end within \(timeout)")
    throw CancellationError()
}

func submit(_ daemon: DaemonProcess, _ spec: String) async throws {
    try await daemon.client.request("POST", "/v1/experiments?directory=\(daemon.home)", body: Data(spec.utf8), contentType: "application/yaml")
}

/// The store in `home`, and the id of its experiment `name`.
func storedExperiment(_ home: String, _ name: String) async throws -> (store: Store, id: Int64) {
    let store = try KnobHome(home).openStore()
    return (store, try #require(try await store.experiment(named: name)?.id))
}

/// Runs `spec` with `knob run` in a new folder that holds it and `trainer` (as trainer.py); the run's
/// home, and the experiment's trials from its store, with their reports.
func runWithTrainer(_ trainer: String, spec: String, experiment: String) async throws
    -> (home: String, trials: [(trial: TrialRecord, reports: [MetricRecord])]) {
    let dir = makeTemporaryDirectory()
    try write(trainer, to: "\(dir)/trainer.py")
    try write(spec, to: "\(dir)/spec.yaml")
    let home = "\(dir)/home"
    let run = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", home])
    #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
    return (home, try await storedTrials(home, experiment))
}

/// Every trial of the experiment from the store, with its reports.
func storedTrials(_ home: String, _ name: String) async throws -> [(trial: TrialRecord, reports: [MetricRecord])] {
    let (store, id) = try await storedExperiment(home, name)
    var result: [(TrialRecord, [MetricRecord])] = []
    for trial in try await store.trials(of: id) {
        result.append((trial, try await store.metrics(ofTrial: trial.id!)))
    }
    return result
}

/// The experiment's events from the store, oldest first.
func storedEvents(_ home: String, _ name: String) async throws -> [EventRecord] {
    let (store, id) = try await storedExperiment(home, name)
    return try await store.events(of: id)
}

/// The last `accuracy=` a log says.
func lastAccuracy(inLog path: String) -> Double? {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return text.split(separator: "\n").compactMap { line -> Double? in
        guard let range = line.range(of: "accuracy=") else { return nil }
        return Double(line[range.upperBound...].prefix { $0.isNumber || $0 == "." })
    }.last
}

@Suite(.serialized) struct PodRunnerTests {
    @Test func theKubernetesExampleRunsTheMNISTTrainerAsJobsThroughKnobd() async throws {
        let cluster = try await KubeCluster.start()
        defer { cluster.stop() }
        let (server, daemon, home) = (cluster.server, cluster.daemon, cluster.daemon.home)

        try await submit(daemon, try exampleJobSpec())
        let view = try await waitForEnd(daemon, "mnist-k8s")
        #expect(view["status"] as? String == "Succeeded", "\(view)")
        // knobd loaded libcurl when it first spoke to the cluster.
        #expect(try daemon.maps.contains("libcurl.so.4"))

        let trials = try await storedTrials(home, "mnist-k8s")
        #expect(trials.count == 3)
        for (trial, reports) in trials {
            #expect(trial.state == .succeeded, "\(trial.name): \(trial.message)")
            // The objective is what the trainer printed last, read from the pod's log stream.
            let printed = try #require(lastAccuracy(inLog: trial.logPath ?? ""))
            #expect(trial.objectiveValue == printed && printed > 0.3)
            #expect(reports.contains { $0.name == "loss" })
            #expect(trial.runnerHandle["kind"] == "Job" && trial.runnerHandle["namespace"] == "default")
        }
        // What knob sent: three Jobs (and the pods the Job controller made from them), every one valid
        // against the official schemas, with knob's labels and the trial's name in its environment.
        let created = try server.created()
        let jobs = created.filter { $0.object["kind"] as? String == "Job" }
        #expect(jobs.count == 3 && created.allSatisfy(\.valid), "\(created.filter { !$0.valid }.map(\.message))")
        let first = try #require(jobs.first?.object)
        let labels = (first["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
        #expect(labels["knob.dev/experiment"] == "mnist-k8s" && labels["katib.kubeflow.org/trial"] == labels["knob.dev/trial"])
        // Trials end with their Jobs deleted (the template does not say retain).
        let remaining = try await server.client.request("GET", "/apis/batch/v1/namespaces/default/jobs")
        #expect((remaining["items"] as? [Any])?.isEmpty == true)
    }

    @Test func aPodSpecRunsThroughTransientFaultsWithoutLosingOrRepeatingAReport() async throws {
        // Rate limiting and a server error on creates (the second after the pod was made, so the retry meets 409
        // and adopts it), watches that expire (410), and followed logs that drop mid-stream.
        let cluster = try await KubeCluster.start(faults: """
            [{"method": "POST", "path": "/pods$", "status": 429, "retryAfter": 1, "times": 1},
             {"method": "POST", "path": "/pods$", "status": 500, "afterServing": true, "times": 1},
             {"method": "GET", "path": "/pods$", "status": 503, "times": 2},
             {"watchGone": true, "times": 3},
             {"logDropAfterLines": 1, "follow": true, "times": 3},
             {"logDropAfterLines": 1, "follow": false, "times": 2}]
            """)
        defer { cluster.stop() }
        let (server, daemon, home) = (cluster.server, cluster.daemon, cluster.daemon.home)

        try await submit(daemon, kubeSpec("mnist-pod", trials: 3, trialSpec: mnistPod))
        let view = try await waitForEnd(daemon, "mnist-pod")
        #expect(view["status"] as? String == "Succeeded", "\(view)")

        for (trial, reports) in try await storedTrials(home, "mnist-pod") {
            #expect(trial.state == .succeeded, "\(trial.name): \(trial.message)")
            let log = try String(contentsOfFile: trial.logPath ?? "", encoding: .utf8)
            let epochLines = log.split(separator: "\n").filter { $0.contains("accuracy=") }
            // Two epochs: two lines in the log and two accuracy reports, whatever dropped in between.
            #expect(epochLines.count == 2, "\(trial.name) log:\n\(log)")
            #expect(reports.filter { $0.name == "accuracy" }.count == 2)
            #expect(trial.objectiveValue == lastAccuracy(inLog: trial.logPath ?? ""))
        }
        #expect(try server.created().allSatisfy(\.valid))
    }

    @Test func eachWayAPodCanFailEndsItsTrialWithTheReason() async throws {
        // Trial n of this experiment meets fault n (parallelism 1, so trials start in order).
        let cluster = try await KubeCluster.start(faults: """
            [{"method": "POST", "path": "/pods$", "status": 403, "times": 1,
              "message": "pods is forbidden: User \\"knob\\" cannot create resource \\"pods\\" in API group \\"\\" in the namespace \\"default\\""},
             {"oomAfterLines": 1, "path": "^fail-2$"},
             {"imagePull": true, "path": "^fail-3$"},
             {"unschedulable": true, "path": "^fail-4$"},
             {"deleteAfterLines": 1, "path": "^fail-5$"}]
            """, daemonArguments: ["--pod-pending-timeout", "2"])
        defer { cluster.stop() }
        let (server, daemon, home) = (cluster.server, cluster.daemon, cluster.daemon.home)

        try await submit(daemon, kubeSpec("fail", trials: 7, parallel: 1, maxFailed: 7, trialSpec: scriptPod(lines: 3, pause: 0.3, code: 3)))
        let view = try await waitForEnd(daemon, "fail")
        #expect(view["status"] as? String == "Failed")
        let trials = try await storedTrials(home, "fail").map(\.trial)
        let outcomes = Dictionary(uniqueKeysWithValues: trials.map { ($0.name, ($0.state, $0.reason, $0.message)) })
        func check(_ name: String, _ state: TrialState, _ reason: String, _ message: String) {
            let outcome = outcomes[name]
            #expect(outcome?.0 == state && outcome?.1 == reason && outcome?.2.contains(message) == true, "\(name): \(String(describing: outcome))")
        }
        check("fail-1", .failed, "StartFailed", "Forbidden: pods is forbidden: User \"knob\" cannot create resource \"pods\"")
        check("fail-2", .failed, "OOMKilled", "ran out of memory and was killed (OOMKilled, exit code 137)")
        check("fail-3", .failed, "ImagePullBackOff", "pod fail-3 did not start within 2s: ImagePullBackOff: Back-off pulling image \"python:3.11\"")
        check("fail-4", .failed, "Unschedulable", "did not start within 2s: Unschedulable: 0/1 nodes are available: 1 Insufficient cpu")
        check("fail-5", .failed, "Deleted", "pod default/fail-5 was deleted before it finished")
        check("fail-6", .failed, "Error", "exited with code 3; last output:\n    step 1 accuracy=0.10")
        // While they waited, the pods that never ran said why, once per reason, as an event, as soon as the
        // reason appeared (the server sets it 50 ms after the pod is created) rather than when the wait ran out.
        let events = try await storedEvents(home, "fail")
        let waiting = events.filter { $0.kind == "TrialWaiting" }
        for (name, said) in [("fail-3", "ImagePullBackOff: Back-off pulling image"), ("fail-4", "Unschedulable: 0/1 nodes are available: 1 Insufficient cpu")] {
            let text = "pod \(name) is not running yet: \(said)"
            #expect(waiting.filter { $0.trialName == name && $0.message.hasPrefix(text) }.count == 1, "\(waiting.map(\.message))")
            let said = waiting.first { $0.trialName == name }?.time
            let failed = events.first { $0.kind == "TrialFailed" && $0.trialName == name }?.time
            #expect(said != nil && failed != nil && failed!.timeIntervalSince(said!) > 0.5, "\(name): waiting said at \(String(describing: said)), failed at \(String(describing: failed))")
        }
        #expect(Set(waiting.compactMap(\.trialName)) == ["fail-3", "fail-4"], "\(waiting.map(\.message))")
        // No trial left a pod behind.
        let pods = try await server.client.request("GET", "/api/v1/namespaces/default/pods")
        #expect((pods["items"] as? [Any])?.isEmpty == true, "\(pods)")
    }

    @Test func knobdFollowsARunningPodAgainAfterItWasKilled() async throws {
        let server = try await KubeAPIServer.start()
        defer { server.stop() }
        let home = makeTemporaryDirectory()
        // Kill knobd while the pods run and have printed part of their output.
        _ = try await knobdKilledWhen(server, home: home, experiment: "adopt", tries: 100,
                                      spec: kubeSpec("adopt", trials: 2, parallel: 2, maxFailed: 1, trialSpec: scriptPod(lines: 12, pause: 0.25))) { trials in
            trials.filter { $0.trial.state == .running && $0.reports.count >= 3 }.count == 2
        }
        let store = try KnobHome(home).openStore()
        try await Task.sleep(for: .seconds(1))
        let restarted = try await DaemonProcess.start(home: home, arguments: ["--kubeconfig", server.kubeconfig], log: "\(home)/knobd-2.log")
        defer { kill(restarted.pid, SIGTERM) }
        let view = try await waitForEnd(restarted, "adopt")
        #expect(view["status"] as? String == "Succeeded", "\(view)")
        for (trial, reports) in try await storedTrials(home, "adopt") {
            #expect(trial.state == .succeeded, "\(trial.name): \(trial.message)")
            // Each of the 12 lines once: in the log and in the reports.
            let log = try String(contentsOfFile: trial.logPath ?? "", encoding: .utf8)
            #expect(log.split(separator: "\n").count == 12, "\(log)")
            #expect(reports.filter { $0.name == "accuracy" }.map(\.value) == (1...12).map { Double($0) / 10 })
            #expect(trial.objectiveValue == 1.2)
        }
        let events = try await store.events(of: try #require(try await store.experiment(named: "adopt")).id!)
        #expect(events.contains { $0.kind == "TrialsAdopted" && $0.message.contains("2 trial(s)") })
    }

    @Test func aResumedExperimentRemovesThePodOfATrialThatEndedButWasNotReleased() async throws {
        let server = try await KubeAPIServer.start()
        defer { server.stop() }
        let home = makeTemporaryDirectory()
        // The first trial has ended and the second runs: stop knobd there.
        let seen = try await knobdKilledWhen(server, home: home, experiment: "swept", tries: 200,
                                             spec: kubeSpec("swept", trials: 2, parallel: 1, maxFailed: 1, trialSpec: scriptPod(lines: 12, pause: 0.25))) { trials in
            trials.count == 2 && trials[0].trial.state == .succeeded && trials[1].trial.state == .running && trials[1].reports.count >= 2
        }
        let ended = try #require(seen?[0].trial, "the first trial never ended while the second ran")
        let uid = try #require(ended.runnerHandle["uid"])

        // As if knobd had died between recording the first trial's end and deleting its pod; beside it,
        // a pod with the experiment's label that is not that trial's (another uid).
        func pod(_ name: String, uid: String) -> [String: Any] {
            ["apiVersion": "v1", "kind": "Pod",
             "metadata": ["name": name, "labels": ["knob.dev/experiment": "swept", "knob.dev/trial": ended.name, "knob.dev/trial-uid": uid]],
             "spec": ["restartPolicy": "Never", "containers": [["name": "leftover", "image": "python:3.11", "command": ["true"]]]]]
        }
        let client = try server.client
        try await client.request("POST", "/api/v1/namespaces/default/pods", body: pod(ended.name, uid: uid))
        try await client.request("POST", "/api/v1/namespaces/default/pods", body: pod("not-swept", uid: "another"))

        let restarted = try await DaemonProcess.start(home: home, arguments: ["--kubeconfig", server.kubeconfig], log: "\(home)/knobd-2.log")
        defer { kill(restarted.pid, SIGTERM) }
        let view = try await waitForEnd(restarted, "swept")
        #expect(view["status"] as? String == "Succeeded", "\(view)")
        #expect(try await podNames(server, settlingOn: ["not-swept"]) == ["not-swept"], "the ended trial's leftover pod is deleted, the stranger stays")
        let events = try await storedEvents(home, "swept")
        #expect(events.contains { $0.kind == "LeftoversRemoved" && $0.message.contains("removed 1 object") }, "\(events.map(\.message))")
    }

    @Test func theAPIClientRetriesWhatIsTransientAndNothingElse() async throws {
        let server = try await KubeAPIServer.start(faults: """
            [{"method": "GET", "path": "/pods$", "status": 429, "retryAfter": 1, "times": 1},
             {"method": "GET", "path": "/pods$", "status": 503, "times": 1},
             {"method": "DELETE", "status": 403, "message": "pods \\"x\\" is forbidden", "times": 1},
             {"method": "POST", "status": 422, "message": "Pod \\"x\\" is invalid: spec.containers: Required value", "times": 1}]
            """)
        defer { server.stop() }
        let client = try server.client
        let started = ContinuousClock.now
        let list = try await client.request("GET", "/api/v1/namespaces/default/pods")
        #expect(list["kind"] as? String == "PodList")
        #expect(ContinuousClock.now - started >= .seconds(1))  // Retry-After was honoured
        // 403 and 422 are reported at once: a retry would have succeeded, since each fault fires once.
        let forbidden = await #expect(throws: KubeAPIError.self) { try await client.request("DELETE", "/api/v1/namespaces/default/pods/x") }
        #expect(forbidden?.status == 403 && forbidden?.reason == "Forbidden" && forbidden?.message == "pods \"x\" is forbidden")
        let invalid = await #expect(throws: KubeAPIError.self) {
            try await client.request("POST", "/api/v1/namespaces/default/pods", body: ["apiVersion": "v1", "kind": "Pod"])
        }
        #expect(invalid?.status == 422 && invalid?.description.contains("spec.containers: Required value") == true)
        // A wrong token on a cluster that wants one: 401 with what to check.
        let config = try String(contentsOfFile: server.kubeconfig, encoding: .utf8).split(separator: "\n")
            .filter { !$0.contains("client-certificate-data") }
            .map { $0.contains("client-key-data") ? "    token: not-the-token" : String($0) }.joined(separator: "\n")
        try write(config, to: "\(server.directory)/token-kubeconfig")
        let access = try ClusterAccess.fromKubeconfig(files: ["\(server.directory)/token-kubeconfig"])
        let refused = await #expect(throws: KubeAPIError.self) { try await KubeClient(access).request("GET", "/api/v1/namespaces/default/pods") }
        #expect(refused?.status == 401 && refused?.description.contains("were refused") == true)
    }
}

@Suite(.serialized) struct PodRunnerEndingTests {
    @Test func permanentAPIErrorsAndAJobDeadlineFailTheTrialWithTheServersWords() async throws {
        let cluster = try await KubeCluster.start()
        defer { cluster.stop() }
        let (server, daemon, home) = (cluster.server, cluster.daemon, cluster.daemon.home)

        // A misspelt field passes knob's checks (a trialSpec is the cluster's to judge) and the API server refuses it.
        try await submit(daemon, kubeSpec("typo", trials: 1, parallel: 1, maxFailed: 1,
                                          trialSpec: scriptPod().replacingOccurrences(of: "command:", with: "comand:")))
        // A Job that runs past its activeDeadlineSeconds.
        let slowJob = """
            apiVersion: batch/v1
            kind: Job
            spec:
              backoffLimit: 0
              activeDeadlineSeconds: 2
              template:
                spec:
                  restartPolicy: Never
                  containers:
            \(scriptPod(lines: 200, pause: 0.1).split(separator: "\n").drop { !$0.contains("- name:") }
                .map { "      \($0)" }.joined(separator: "\n"))
            """
        try await submit(daemon, kubeSpec("deadline", trials: 1, parallel: 1, maxFailed: 1, trialSpec: slowJob))
        for name in ["typo", "deadline"] { _ = try await waitForEnd(daemon, name) }

        let typo = try #require(try await storedTrials(home, "typo").first?.trial)
        #expect(typo.state == .failed && typo.reason == "StartFailed", "\(typo.message)")
        #expect(typo.message.contains("422 Invalid: Pod \"typo-1\" is invalid") && typo.message.contains("'comand' was unexpected"), "\(typo.message)")
        let deadline = try #require(try await storedTrials(home, "deadline").first)
        #expect(deadline.trial.state == .failed && deadline.trial.reason == "DeadlineExceeded", "\(deadline.trial.message)")
        #expect(deadline.trial.message.contains("Job was active longer than specified deadline"))
        // 200 lines take 20 s: far past the 2 s deadline, so a busy machine cannot let the pod finish first.
        #expect(deadline.reports.count < 200, "the Job was stopped before its pod finished")

        // Credentials the cluster refuses: 401, said once, not retried in a loop.
        let config = try String(contentsOfFile: server.kubeconfig, encoding: .utf8).split(separator: "\n")
            .filter { !$0.contains("client-certificate-data") }
            .map { $0.contains("client-key-data") ? "    token: expired-token" : String($0) }.joined(separator: "\n")
        try write(config, to: "\(server.directory)/expired-kubeconfig")
        let otherHome = makeTemporaryDirectory()
        let refused = try await DaemonProcess.start(home: otherHome, arguments: ["--kubeconfig", "\(server.directory)/expired-kubeconfig"])
        defer { kill(refused.pid, SIGTERM) }
        try await submit(refused, kubeSpec("refused", trials: 1, parallel: 1, maxFailed: 1, trialSpec: scriptPod()))
        _ = try await waitForEnd(refused, "refused")
        let trial = try #require(try await storedTrials(otherHome, "refused").first?.trial)
        #expect(trial.state == .failed && trial.reason == "StartFailed" && trial.message.contains("401 Unauthorized"), "\(trial.message)")
        let log = try String(contentsOfFile: "\(server.directory)/server.log", encoding: .utf8)
        #expect(log.components(separatedBy: "\" 401 ").count - 1 == 1, "one refused request")
    }

    @Test func knobRunDrivesAPodExperimentInOneProcess() async throws {
        let server = try await KubeAPIServer.start()
        defer { server.stop() }
        let dir = makeTemporaryDirectory()
        try write(kubeSpec("inline", trials: 2, parallel: 2, maxFailed: 1, trialSpec: scriptPod(lines: 4)), to: "\(dir)/spec.yaml")
        let result = try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", "\(dir)/home", "--kubeconfig", server.kubeconfig, "-o", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let optimal = try #require(try json(result.stdout) as? [String: Any])
        let metrics = (optimal["observation"] as? [String: Any])?["metrics"] as? [[String: Any]] ?? []
        let accuracy = metrics.first { $0["name"] as? String == "accuracy" }
        #expect(accuracy?["max"] as? String == "0.4", "the last of the four lines each pod printed: \(result.stdout)")
        #expect(result.stderr.contains("[2/2]"))
    }

    @Test func stoppingDeletesTheRunningPodAndRetainKeepsAFinishedOne() async throws {
        let cluster = try await KubeCluster.start()
        defer { cluster.stop() }
        let (server, daemon, home) = (cluster.server, cluster.daemon, cluster.daemon.home)

        try await submit(daemon, kubeSpec("kept", trials: 1, parallel: 1, maxFailed: 1, trialSpec: scriptPod())
            .replacingOccurrences(of: "    primaryContainerName:", with: "    retain: true\n    primaryContainerName:"))
        try await submit(daemon, kubeSpec("stopped", trials: 1, parallel: 1, maxFailed: 1, trialSpec: scriptPod(lines: 200, pause: 0.1)))
        for _ in 0..<100 {
            if let trial = try await storedTrials(home, "stopped").first, trial.reports.count >= 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await daemon.client.request("POST", "/v1/experiments/stopped/stop")
        let stopped = try await waitForEnd(daemon, "stopped")
        let kept = try await waitForEnd(daemon, "kept")
        #expect(stopped["status"] as? String == "Stopped" && kept["status"] as? String == "Succeeded")
        let killed = try #require(try await storedTrials(home, "stopped").first?.trial)
        #expect(killed.state == .killed, "\(killed.message)")

        #expect(try await podNames(server, settlingOn: ["kept-1"]) == ["kept-1"], "the stopped trial's pod is deleted; the retained one stays")
        let log = try String(contentsOfFile: "\(server.directory)/server.log", encoding: .utf8)
        #expect(log.contains("DELETE /api/v1/namespaces/default/pods/stopped-1?propagationPolicy=Foreground&gracePeriodSeconds="))
    }
}

@Suite struct PodRunnerFindingTests {
    func launch(_ trial: String, directory: String) -> TrialLaunch {
        TrialLaunch(experimentName: "found", trialName: trial, argv: [], workingDirectory: directory, environment: [:],
                    logPath: "\(directory)/\(trial).log", trialDirectory: directory)
    }

    /// The trial's object as given (not from a spec).
    func object(_ trialSpec: String) throws -> KubernetesLaunch {
        KubernetesLaunch(manifest: try SpecValue.parse("# trialSpec\n" + trialSpec), namespace: nil, primaryContainerName: nil, retain: false)
    }

    @Test func aPodWhoseStartWasNotRecordedIsFoundByItsLabelsAndAStrangersIsNotTaken() async throws {
        let server = try await KubeAPIServer.start()
        defer { server.stop() }
        let directory = makeTemporaryDirectory()
        let runner = PodRunner(options: KubernetesOptions(kubeconfig: server.kubeconfig))
        let trialLaunch = launch("found-1", directory: directory), pod = try object(scriptPod(lines: 3))
        #expect(await runner.find(trialLaunch, kubernetes: pod) == nil, "nothing to find before it exists")

        // A starter that died right after creating the pod: the next one finds it by its labels and follows it.
        let manifest = try TrialManifest(trialLaunch, kubernetes: pod, defaultNamespace: "default")
        try await server.client.request("POST", "/api/v1/namespaces/default/pods", body: manifest.object)
        let found = try #require(await runner.find(trialLaunch, kubernetes: pod))
        #expect(found.handle["name"] == "found-1" && found.handle["kind"] == "Pod")
        #expect(await found.wait() == .exited(0))
        await found.release()
        #expect(try String(contentsOfFile: trialLaunch.logPath, encoding: .utf8).split(separator: "\n").count == 3)

        // A pod of the same name that is not this trial's is left alone, and the trial says why it cannot start.
        let stranger = launch("found-2", directory: directory), strangerPod = try object(scriptPod(lines: 1))
        var object = try TrialManifest(stranger, kubernetes: strangerPod, defaultNamespace: "default").object
        object["metadata"] = ["name": "found-2", "labels": ["app": "someone-else"]]
        try await server.client.request("POST", "/api/v1/namespaces/default/pods", body: object)
        let refused = await #expect(throws: RunnerError.self) { try await runner.start(stranger, kubernetes: strangerPod) }
        #expect(refused?.description.contains("a Pod named found-2 already exists in namespace default and is not this trial's") == true)
    }

    @Test func aJobThatRetriesItsPodFollowsTheNextPodsLog() async throws {
        let server = try await KubeAPIServer.start()
        defer { server.stop() }
        let directory = makeTemporaryDirectory()
        // Fails the first time (no marker yet), succeeds the second.
        let script = "import os, sys\\nm = '\(directory)/marker'\\nfirst = not os.path.exists(m)\\nopen(m, 'w').close()\\nprint('attempt first' if first else 'attempt second accuracy=0.9', flush=True)\\nsys.exit(1 if first else 0)\\n"
        let job = """
            apiVersion: batch/v1
            kind: Job
            spec:
              backoffLimit: 1
              template:
                spec:
                  restartPolicy: Never
                  containers:
                    - name: main
                      image: python:3.11
                      command: ["python3", "-c", "\(script)"]
            """
        let runner = PodRunner(options: KubernetesOptions(kubeconfig: server.kubeconfig))
        let trialLaunch = launch("found-3", directory: directory)
        let trial = try await runner.start(trialLaunch, kubernetes: try object(job))
        #expect(await trial.wait() == .exited(0))
        await trial.release()
        let log = try String(contentsOfFile: trialLaunch.logPath, encoding: .utf8)
        #expect(log == "attempt first\nattempt second accuracy=0.9\n", "\(log)")
        let pods = try await server.client.request("GET", "/api/v1/namespaces/default/pods", query: [("labelSelector", "job-name=found-3")])
        #expect((pods["items"] as? [Any])?.count ?? 0 <= 2)
    }
}
