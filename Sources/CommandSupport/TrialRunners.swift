import Knob
import Kubernetes

/// Every trial runner knob has, each registered here once, in the order an experiment's trials are offered to
/// them: a runner is a module of its own (Sources/Kubernetes for the cluster's) and one line here.
public func trialRunners(supervisor: String, kubernetes: KubernetesArguments) -> RunnerSet {
    RunnerSet([
        LocalRunner(supervisor: supervisor),
        PodRunner(options: kubernetes.options, pendingTimeout: kubernetes.podPendingTimeout),
    ])
}
