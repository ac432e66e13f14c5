import CSpawn
import Foundation

/// Runs trials as local processes: argv (no shell), in a process group of their own, stdout and
/// stderr appended to the trial's log file, stdin from /dev/null, signal mask and dispositions
/// reset so that SIGTERM works.
public struct LocalRunner: TrialRunner {
    public init() {}

    public func start(_ launch: TrialLaunch) async throws -> any RunningTrial {
        try FileManager.default.createDirectory(atPath: launch.trialDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            atPath: (launch.logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = environment["PYTHONUNBUFFERED"] ?? "1"
        environment.merge(launch.environment) { _, new in new }
        environment["KNOB_EXPERIMENT"] = launch.experimentName
        environment["KNOB_TRIAL"] = launch.trialName
        environment["KATIB_TRIAL_NAME"] = launch.trialName
        environment["KNOB_TRIAL_DIR"] = launch.trialDirectory
        let pid = try spawn(launch, environment: environment)
        return LocalProcess(pid: pid)
    }

    private func spawn(_ launch: TrialLaunch, environment: [String: String]) throws -> pid_t {
        guard let program = launch.argv.first else { throw RunnerError.startFailed("the command is empty") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: launch.workingDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RunnerError.startFailed("working directory \(launch.workingDirectory) does not exist")
        }
        let logFD = open(launch.logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard logFD >= 0 else {
            throw RunnerError.startFailed("cannot open the log file \(launch.logPath): \(String(cString: strerror(errno)))")
        }
        defer { close(logFD) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, logFD, 1)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        knob_spawn_addclosefrom(&actions, 3)
        knob_spawn_addchdir(&actions, launch.workingDirectory)

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
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = launch.argv.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, program, &actions, &attributes, argv, envp)
        guard status == 0 else {
            let reason = String(cString: strerror(status))
            let hint = status == ENOENT ? " (is it installed and on PATH?)" : status == EACCES ? " (is it executable?)" : ""
            throw RunnerError.startFailed("cannot start \(program): \(reason)\(hint)")
        }
        return pid
    }
}

/// A trial process and its process group (same id: the child leads its own group).
final class LocalProcess: RunningTrial, @unchecked Sendable {
    let pid: pid_t
    private let lock = NSLock()
    private var exit: TrialExit?
    private var waiters: [CheckedContinuation<TrialExit, Never>] = []

    init(pid: pid_t) {
        self.pid = pid
        // waitpid blocks: it gets a thread of its own, never a cooperative one.
        Thread.detachNewThread { [self] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
            let result: TrialExit = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
            // Whatever the trial left behind in its group goes with it.
            kill(-pid, SIGKILL)
            lock.lock()
            exit = result
            let pending = waiters
            waiters = []
            lock.unlock()
            pending.forEach { $0.resume(returning: result) }
        }
    }

    var handle: [String: String] {
        ["pid": String(pid), "pgid": String(pid), "runner": "local"]
    }

    func wait() async -> TrialExit {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let exit {
                lock.unlock()
                continuation.resume(returning: exit)
            } else {
                waiters.append(continuation)
                lock.unlock()
            }
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
