import CSpawn
import Foundation

/// Runs trials as local processes: argv (no shell), in a process group of their own, stdout and
/// stderr appended to the trial's log file, stdin from /dev/null, signal mask and dispositions
/// reset so that SIGTERM works.
///
/// With a `supervisor` (the path of `knob` or `knobd`), each trial runs under
/// `<supervisor> __supervise`: a small process that waits for the trial and writes its exit status
/// next to the log. The trial then outlives the process that started it, and a new one can
/// `adopt` it and still learn how it ended.
public struct LocalRunner: TrialRunner {
    public let supervisor: String?

    public init(supervisor: String? = nil) {
        self.supervisor = supervisor
    }

    public func start(_ launch: TrialLaunch) async throws -> any RunningTrial {
        guard !launch.argv.isEmpty else { throw RunnerError.startFailed("the command is empty") }
        // knob's folders are private (the trial's own files inside keep the user's umask).
        try FileManager.default.createDirectory(atPath: launch.trialDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try FileManager.default.createDirectory(
            atPath: (launch.logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: launch.workingDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RunnerError.startFailed("working directory \(launch.workingDirectory) does not exist")
        }
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = environment["PYTHONUNBUFFERED"] ?? "1"
        environment.merge(launch.environment) { _, new in new }
        environment["KNOB_EXPERIMENT"] = launch.experimentName
        environment["KNOB_TRIAL"] = launch.trialName
        environment["KATIB_TRIAL_NAME"] = launch.trialName
        environment["KNOB_TRIAL_DIR"] = launch.trialDirectory
        if let umask = UserUmask.kept { environment[UserUmask.variable] = umask }

        let logFD = open(launch.logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard logFD >= 0 else {
            throw RunnerError.startFailed("cannot open the log file \(launch.logPath): \(String(cString: strerror(errno)))")
        }
        defer { close(logFD) }
        fchmod(logFD, 0o600)
        let statusPath = supervisor.map { _ in launch.logPath + ".status" }
        if let statusPath { unlink(statusPath) }
        let argv = supervisor.map { [$0, Supervisor.command, "--status", statusPath!, "--"] + launch.argv } ?? launch.argv
        let pid: pid_t
        do {
            pid = try spawn(argv, environment: environment, workingDirectory: launch.workingDirectory, output: logFD, newProcessGroup: true)
        } catch {
            throw RunnerError.startFailed("cannot start \(argv[0]): \(error.message)\(error.hint)")
        }
        return LocalProcess(pid: pid, statusPath: statusPath)
    }

    /// A supervised trial is found by its supervisor's command line, which names the trial's
    /// status file; one that already ended is found by that file.
    public func find(_ launch: TrialLaunch) -> (any RunningTrial)? {
        guard supervisor != nil else { return nil }
        let statusPath = launch.logPath + ".status"
        let marker = Array("--status\0\(statusPath)\0".utf8)
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap(Int32.init) ?? []
        for pid in pids where pid != getpid() {
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                  data.count >= marker.count, Array(data).firstRange(of: marker) != nil else { continue }
            return AdoptedProcess(pid: pid, statusPath: statusPath, startTime: processStartTime(pid))
        }
        if Supervisor.readStatus(statusPath) != nil {
            return AdoptedProcess(pid: 0, statusPath: statusPath, startTime: nil)
        }
        return nil
    }

    public func adopt(handle: [String: String]) -> (any RunningTrial)? {
        guard handle["runner"] == "local", let pid = handle["pid"].flatMap(Int32.init), let statusPath = handle["status"] else {
            return nil
        }
        return AdoptedProcess(pid: pid, statusPath: statusPath, startTime: handle["started"])
    }
}

/// Why `posix_spawn` failed.
struct SpawnError: Error {
    let code: Int32

    var message: String { String(cString: strerror(code)) }
    var hint: String { code == ENOENT ? " (is it installed and on PATH?)" : code == EACCES ? " (is it executable?)" : "" }
}

/// Starts `argv` with an empty signal mask and default dispositions (so SIGTERM and SIGINT work
/// whatever thread this runs on), stdin from /dev/null, and descriptors above 2 closed.
/// `output`: where stdout and stderr go (inherited when nil). Leads a new process group when asked.
func spawn(_ argv: [String], environment: [String: String]?, workingDirectory: String?, output: Int32?,
           newProcessGroup: Bool) throws(SpawnError) -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    if let output {
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_adddup2(&actions, output, 2)
    }
    knob_spawn_addclosefrom(&actions, 3)
    if let workingDirectory { knob_spawn_addchdir(&actions, workingDirectory) }

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var emptyMask = sigset_t()
    sigemptyset(&emptyMask)
    posix_spawnattr_setsigmask(&attributes, &emptyMask)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
    if newProcessGroup {
        posix_spawnattr_setpgroup(&attributes, 0)
        flags |= POSIX_SPAWN_SETPGROUP
    }
    posix_spawnattr_setflags(&attributes, Int16(flags))

    let cArgv = argv.map { strdup($0) } + [nil]
    let cEnv = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
    defer {
        cArgv.forEach { free($0) }
        cEnv?.forEach { free($0) }
    }
    var pid: pid_t = 0
    let status = cEnv.map { env in posix_spawnp(&pid, argv[0], &actions, &attributes, cArgv, env) }
        ?? posix_spawnp(&pid, argv[0], &actions, &attributes, cArgv, environ)
    guard status == 0 else { throw SpawnError(code: status) }
    return pid
}

/// A trial process started here and its process group (same id: the child leads its own group).
final class LocalProcess: RunningTrial, @unchecked Sendable {
    let pid: pid_t
    /// Where a supervised trial's exit status appears.
    let statusPath: String?
    private let lock = NSLock()
    private var exit: TrialExit?
    private var waiters: [UUID: CheckedContinuation<TrialExit, Never>] = [:]

    init(pid: pid_t, statusPath: String?) {
        self.pid = pid
        self.statusPath = statusPath
        // waitpid blocks: it gets a thread of its own, never a cooperative one.
        Thread.detachNewThread { [self] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
            let own: TrialExit = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
            let result = statusPath.flatMap(Supervisor.readStatus) ?? own
            // Whatever the trial left behind in its group goes with it.
            kill(-pid, SIGKILL)
            lock.lock()
            exit = result
            let pending = waiters.values
            waiters = [:]
            lock.unlock()
            pending.forEach { $0.resume(returning: result) }
        }
    }

    var handle: [String: String] {
        var handle = ["pid": String(pid), "pgid": String(pid), "runner": "local"]
        if let statusPath { handle["status"] = statusPath }
        if let started = processStartTime(pid) { handle["started"] = started }
        return handle
    }

    /// Waits for the exit; a cancelled wait returns `.lost` at once and leaves the process running
    /// (as when the daemon shuts down and leaves its trials to the next one).
    func wait() async -> TrialExit {
        let id = UUID()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                lock.lock()
                if let exit {
                    lock.unlock()
                    continuation.resume(returning: exit)
                } else if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(returning: .lost)
                } else {
                    waiters[id] = continuation
                    lock.unlock()
                }
            }
        } onCancel: {
            lock.lock()
            let waiter = waiters.removeValue(forKey: id)
            lock.unlock()
            waiter?.resume(returning: .lost)
        }
    }

    private var hasExited: Bool {
        lock.lock()
        defer { lock.unlock() }
        return exit != nil
    }

    func terminate(grace: Duration) async {
        guard !hasExited else { return }
        kill(-pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while !hasExited, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if !hasExited { kill(-pid, SIGKILL) }
        _ = await wait()
    }
}

/// A supervised trial found again after the process that started it died: its supervisor is no
/// child of ours, so its end is learnt from the status file it writes (or its disappearance).
final class AdoptedProcess: RunningTrial, @unchecked Sendable {
    let pid: pid_t
    let statusPath: String
    let startTime: String?

    init(pid: pid_t, statusPath: String, startTime: String?) {
        self.pid = pid
        self.statusPath = statusPath
        self.startTime = startTime
    }

    var handle: [String: String] {
        var handle = ["pid": String(pid), "pgid": String(pid), "runner": "local", "status": statusPath]
        if let startTime { handle["started"] = startTime }
        return handle
    }

    /// The supervisor is still running (and is the same process: pids get reused). Pid 0 stands
    /// for a trial known only by its status file.
    private var supervisorRunning: Bool {
        pid > 0 && processIsRunning(pid) && (startTime == nil || processStartTime(pid) == startTime)
    }

    func wait() async -> TrialExit {
        while true {
            if let exit = Supervisor.readStatus(statusPath) {
                if pid > 0 { kill(-pid, SIGKILL) }
                return exit
            }
            if !supervisorRunning {
                if let exit = Supervisor.readStatus(statusPath) { return exit }
                if pid > 0, processStartTime(pid) == startTime { kill(-pid, SIGKILL) }
                return .lost
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    func terminate(grace: Duration) async {
        guard supervisorRunning else { return }
        kill(-pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while supervisorRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if supervisorRunning { kill(-pid, SIGKILL) }
    }
}

/// When process `pid` started (clock ticks since boot, from /proc), to tell it from a later
/// process that got the same pid.
func processStartTime(_ pid: pid_t) -> String? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // Fields after the command: state is field 3, starttime field 22.
    return fields.count > 19 ? String(fields[19]) : nil
}
