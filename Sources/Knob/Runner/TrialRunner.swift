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

    public init(
        experimentName: String, trialName: String, argv: [String], workingDirectory: String,
        environment: [String: String], logPath: String, trialDirectory: String
    ) {
        self.experimentName = experimentName
        self.trialName = trialName
        self.argv = argv
        self.workingDirectory = workingDirectory
        self.environment = environment
        self.logPath = logPath
        self.trialDirectory = trialDirectory
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

    public var succeeded: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let code): return "exited with code \(code)"
        case .signaled(let signal): return "was killed by signal \(signal) (\(signalName(signal)))"
        case .startFailed(let message): return message
        case .lost: return "its process vanished without leaving an exit status; the result is unknown"
        }
    }
}

/// Starts trials. Implementations: `LocalRunner` (a process group on this machine).
///
/// Contract: `start` returns once the trial is running, with its output going to
/// `launch.logPath`; it throws `RunnerError.startFailed` when the trial cannot start.
/// `adopt` finds a trial again from the handle recorded when it started (after the process that
/// started it died): `nil` when the handle cannot be followed by this runner. `find` looks for a
/// trial whose start was never recorded (its starter died between starting it and recording
/// it): `nil` when it did not start.
public protocol TrialRunner: Sendable {
    func start(_ launch: TrialLaunch) async throws -> any RunningTrial
    func adopt(handle: [String: String]) -> (any RunningTrial)?
    func find(_ launch: TrialLaunch) -> (any RunningTrial)?
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
