import Foundation

/// Everything a runner needs to start one trial.
public struct TrialLaunch: Sendable {
    public var experimentName: String
    public var trialName: String
    /// The program and its arguments, parameters already substituted.
    public var argv: [String]
    /// Where the command runs.
    public var workingDirectory: String
    /// Variables added to the runner's own environment.
    public var environment: [String: String]
    /// Where the trial's stdout and stderr go.
    public var logPath: String
    /// The trial's own folder for artifacts (`KNOB_TRIAL_DIR`).
    public var trialDirectory: String
    /// The experiment's spec (its template, as the experiment started with it) and the trial's values for its
    /// `${trialParameters.X}` placeholders: what a runner that makes more than a command reads (a cluster's object).
    public var spec: ExperimentSpec?
    public var values: [String: String]
    /// Tells this trial from an earlier one of the same name (an experiment deleted and created again).
    public var trialUID: String
    /// A Push experiment's trial: where it sends its reports, and its token.
    public var push: PushCredentials?

    public init(
        experimentName: String, trialName: String, argv: [String], workingDirectory: String,
        environment: [String: String], logPath: String, trialDirectory: String, spec: ExperimentSpec? = nil,
        values: [String: String] = [:], trialUID: String = "", push: PushCredentials? = nil
    ) {
        self.experimentName = experimentName
        self.trialName = trialName
        self.argv = argv
        self.workingDirectory = workingDirectory
        self.environment = environment
        self.logPath = logPath
        self.trialDirectory = trialDirectory
        self.spec = spec
        self.values = values
        self.trialUID = trialUID
        self.push = push
    }
}

/// How a trial's process ended.
public enum TrialExit: Sendable, Hashable {
    case exited(Int32)
    case signaled(Int32)
    /// The command could not be started (a supervised trial learns this after `start`).
    case startFailed(String)
    /// The process vanished without leaving an exit status (e.g. the machine rebooted).
    case lost
    /// Ended for a reason the runner names (a Kubernetes `OOMKilled`, `ImagePullBackOff`,
    /// `DeadlineExceeded`…), with the exit code when a container exited.
    case failed(reason: String, message: String, exitCode: Int32?)

    public var succeeded: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let code): return "exited with code \(code)"
        case .signaled(let signal): return "was killed by signal \(signal) (\(signalName(signal)))"
        case .startFailed(let message): return message
        case .lost: return "its process vanished without leaving an exit status; the result is unknown"
        case .failed(_, let message, _): return message
        }
    }
}

/// Starts trials. Implementations: `LocalRunner` (a process group on this machine) and
/// `PodRunner` (an object on a Kubernetes cluster), each registered in a `RunnerSet`.
///
/// Contract: `start` returns once the trial is running, with its output going to
/// `launch.logPath`; it throws `RunnerError.startFailed` when the trial cannot start.
/// `adopt` finds a trial again from the handle recorded when it started (after the process that
/// started it died): `nil` when the handle cannot be followed by this runner. `find` looks for a
/// trial whose start was never recorded (its starter died between starting it and recording
/// it): `nil` when it did not start.
public protocol TrialRunner: Sendable {
    func start(_ launch: TrialLaunch) async throws -> any RunningTrial
    func adopt(handle: [String: String]) async -> (any RunningTrial)?
    func find(_ launch: TrialLaunch) async -> (any RunningTrial)?
    /// Removes what trials whose end is recorded still left behind: a process that stopped between
    /// recording a trial's end and `RunningTrial.release()`. Returns how many it removed.
    func sweep(experiment: String, ended handles: [[String: String]]) async -> Int
    /// Checks, when an experiment starts, what only the runner can know (a cluster that serves the trials'
    /// kind, a template kept in a ConfigMap), and returns the spec to run: `spec`, or `spec` with its
    /// template read from where it is kept (`specText` is the spec as written). Throws
    /// `KnobError.refusedAtStart` for a spec the runner cannot run.
    func prepare(_ spec: ExperimentSpec, specText: String) async throws -> ExperimentSpec
    /// Whether this runner runs the trials of `spec`.
    func runs(_ spec: ExperimentSpec) -> Bool
    /// Whether a File or TensorFlowEvent collector's path is on this machine, for knob to read (not in a
    /// container of the trial's, whose collector's output the runner puts in the trial's log).
    var collectorFilesAreLocal: Bool { get }
}

extension TrialRunner {
    public func sweep(experiment: String, ended handles: [[String: String]]) async -> Int { 0 }
    public func prepare(_ spec: ExperimentSpec, specText: String) async throws -> ExperimentSpec { spec }
    public var collectorFilesAreLocal: Bool { true }
}

/// A started trial.
///
/// `wait` may be called once; `terminate` may be called any time, also concurrently with `wait`,
/// and ends the trial and everything it started.
public protocol RunningTrial: Sendable {
    /// What finds this trial again (pid and process group, pod name…), recorded in the store.
    var handle: [String: String] { get }
    /// Waits for the trial to end.
    func wait() async -> TrialExit
    /// Asks the trial to stop (SIGTERM to its whole process group), then forces it (SIGKILL)
    /// after `grace`.
    func terminate(grace: Duration) async
    /// Called once the trial's end is recorded: removes what it leaves behind (a finished pod).
    func release() async
    /// Calls `report` with each new reason the trial is not running yet (a pod that cannot be
    /// scheduled, an image that cannot be pulled), at once with the current one if there is one.
    func onWaiting(_ report: @escaping @Sendable (String) -> Void)
}

extension RunningTrial {
    public func release() async {}
    /// A local process runs as soon as it starts: never waiting.
    public func onWaiting(_ report: @escaping @Sendable (String) -> Void) {}
}

public enum RunnerError: Error, Sendable, CustomStringConvertible {
    case startFailed(String)

    public var description: String {
        switch self {
        case .startFailed(let message): return message
        }
    }
}

/// `SIGKILL` for 9, and so on.
public func signalName(_ signal: Int32) -> String {
    let names: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGABRT: "SIGABRT", SIGFPE: "SIGFPE",
        SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM",
        SIGUSR1: "SIGUSR1", SIGUSR2: "SIGUSR2", SIGBUS: "SIGBUS", SIGXCPU: "SIGXCPU",
    ]
    return names[signal] ?? "signal \(signal)"
}

/// Whether process `pid` exists and has not exited (a zombie, exited but not yet reaped, does not count).
public func processIsRunning(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")"),
          let state = stat[close...].dropFirst(2).first else { return true }
    return state != "Z" && state != "X"
}

/// The runners an engine has, each registered once where the executables are put together: an experiment's
/// trials go to the first that runs them.
public struct RunnerSet: Sendable {
    public var runners: [any TrialRunner]

    public init(_ runners: [any TrialRunner]) {
        self.runners = runners
    }

    /// The runner for `spec`'s trials; the first runner when none claims them (its start says why it cannot run them).
    public func runner(for spec: ExperimentSpec) -> any TrialRunner {
        runners.first { $0.runs(spec) } ?? runners[0]
    }
}
