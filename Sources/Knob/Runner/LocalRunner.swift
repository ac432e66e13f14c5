import CSpawn
import Foundation
import Synchronization

/// Runs trials as local processes: argv (no shell), in a process group of their own, stdout and
/// stderr appended to the trial's log file, stdin from /dev/null, signal mask and dispositions
/// reset so that SIGTERM works.
///
/// With a `supervisor` (the path of `knob` or `knobd`), each trial runs under a supervisor: a small
/// process that waits for the trial and writes its exit status next to the log. The trial then
/// outlives the process that started it, and a new one can `adopt` it and still learn how it ended.
/// When `knob-supervise` lies next to `supervisor`, one `knob-supervise --serve` per process starts and
/// waits for every trial (`SupervisorServer`). `KNOB_SUPERVISOR` chooses otherwise: `each` for a
/// `knob-supervise` per trial, `builtin` for `<supervisor> __supervise` per trial (also what is used when
/// there is no `knob-supervise`). All three write the same status files and find each other's trials.
public struct LocalRunner: TrialRunner {
    public let supervisor: String?
    /// How supervised trials run.
    let mode: Mode

    enum Mode: Equatable {
        /// No supervisor: the trial is this process's child.
        case unsupervised
        /// Through the serving supervisor at this path.
        case serving(String)
        /// Each under a supervisor of its own: this command, then `--status FILE -- COMMAND...`.
        case each([String])
    }

    /// What each supervised trial runs under, before `--status FILE -- COMMAND...`, when each has its own.
    var supervisorCommand: [String]? {
        if case .each(let command) = mode { command } else { nil }
    }

    /// The variable that gives a trial its folder (and finds a served trial again).
    static let trialFolderVariable = "KNOB_TRIAL_DIR"

    /// The small supervisor's file name, looked for next to `supervisor`.
    public static let smallSupervisorName = "knob-supervise"
    /// The variable that chooses the supervisor: `builtin` for `__supervise` of knob or knobd itself,
    /// `each` for a `knob-supervise` per trial; anything else (or nothing) for the serving `knob-supervise`
    /// when it is there.
    public static let supervisorChoiceVariable = "KNOB_SUPERVISOR"

    /// A template with a command runs here.
    public func runs(_ spec: ExperimentSpec) -> Bool { spec.trialTemplate.command != nil }

    /// How often an adopted trial is looked at where no pidfd tells when its supervisor exits.
    public var adoptedLookInterval: Duration = .milliseconds(100)

    /// What every trial's environment starts from: this process's, as the runner was made.
    let baseEnvironment: [String: String]

    public init(supervisor: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.supervisor = supervisor
        var base = environment
        base["PYTHONUNBUFFERED"] = base["PYTHONUNBUFFERED"] ?? "1"
        baseEnvironment = base
        mode = supervisor.map { Self.mode(executable: $0, choice: environment[Self.supervisorChoiceVariable]) } ?? .unsupervised
    }

    /// The serving `knob-supervise` next to `executable` when it is there and not declined, else a
    /// supervisor per trial: `knob-supervise` with `each`, `[executable, "__supervise"]` with `builtin` or
    /// without `knob-supervise`.
    static func mode(executable: String, choice: String?) -> Mode {
        let small = (executable as NSString).deletingLastPathComponent + "/" + smallSupervisorName
        guard choice != "builtin", FileManager.default.isExecutableFile(atPath: small) else {
            return .each([executable, Supervisor.command])
        }
        return choice == "each" ? .each([small]) : .serving(small)
    }

    /// The serving supervisors of this process, one per executable, each made when first needed and again
    /// if it dies.
    private static let servers = Mutex<[String: SupervisorServer]>([:])

    /// This process's serving supervisor `pid`, if it is still there.
    static func liveServer(pid: pid_t) -> SupervisorServer? {
        servers.withLock { servers in servers.values.first { $0.pid == pid && !$0.isGone } }
    }

    static func server(_ executable: String) throws(SpawnError) -> SupervisorServer {
        try servers.withLock { (servers) throws(SpawnError) -> SupervisorServer in
            if let server = servers[executable], !server.isGone { return server }
            let server = try SupervisorServer(executable: executable)
            servers[executable] = server
            return server
        }
    }

    public func start(_ launch: TrialLaunch) async throws -> any RunningTrial {
        guard !launch.argv.isEmpty else { throw RunnerError.startFailed("the command is empty") }
        // knob's folders are private (the trial's own files inside keep the user's umask).
        try makePrivateDirectory(launch.trialDirectory)
        var about = stat()
        guard stat(launch.workingDirectory, &about) == 0, about.st_mode & S_IFMT == S_IFDIR else {
            throw RunnerError.startFailed("working directory \(launch.workingDirectory) does not exist")
        }
        var environment = baseEnvironment
        environment.merge(launch.environment) { _, new in new }
        environment["KNOB_EXPERIMENT"] = launch.experimentName
        environment["KNOB_TRIAL"] = launch.trialName
        environment["KATIB_TRIAL_NAME"] = launch.trialName
        environment[Self.trialFolderVariable] = launch.trialDirectory
        if let push = launch.push { environment.merge(push.environment) { _, new in new } }
        // Where the trial saves what a pipeline fetches later (`knob artifacts`).
        let artifacts = Artifacts.directory(trialDirectory: launch.trialDirectory)
        try? makePrivateDirectory(artifacts)
        environment["KNOB_ARTIFACTS_DIR"] = artifacts
        if let umask = UserUmask.kept { environment[UserUmask.variable] = umask }

        // The logs' folder is made by the first trial that finds it missing.
        var logFD = open(launch.logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if logFD < 0, errno == ENOENT {
            try makePrivateDirectory((launch.logPath as NSString).deletingLastPathComponent)
            logFD = open(launch.logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        }
        guard logFD >= 0 else {
            throw RunnerError.startFailed("cannot open the log file \(launch.logPath): \(String(cString: strerror(errno)))")
        }
        defer { close(logFD) }
        fchmod(logFD, 0o600)
        let statusPath = mode == .unsupervised ? nil : launch.logPath + ".status"
        if let statusPath { unlink(statusPath) }
        if case .serving(let executable) = mode, let statusPath {
            return try await startServed(launch, executable: executable, environment: environment, statusPath: statusPath)
        }
        let argv = supervisorCommand.map { $0 + ["--status", statusPath!, "--"] + launch.argv } ?? launch.argv
        let pid: pid_t
        do {
            pid = try spawn(argv, environment: environment, workingDirectory: launch.workingDirectory, output: logFD, newProcessGroup: true)
        } catch {
            throw RunnerError.startFailed("cannot start \(argv[0]): \(error.message)\(error.hint)")
        }
        return LocalProcess(pid: pid, statusPath: statusPath)
    }

    /// Through the serving supervisor; once more with a new one if it has died.
    private func startServed(_ launch: TrialLaunch, executable: String, environment: [String: String],
                             statusPath: String) async throws -> any RunningTrial {
        for attempt in 1...2 {
            let server: SupervisorServer
            do {
                server = try Self.server(executable)
            } catch {
                throw RunnerError.startFailed("cannot start the supervisor \(executable): \(error.message)\(error.hint)")
            }
            let answer: SupervisorServer.Answer
            do {
                answer = try await server.start(argv: launch.argv, environment: environment, workingDirectory: launch.workingDirectory,
                                                logPath: launch.logPath, statusPath: statusPath)
            } catch let gone as SupervisorServer.Gone where !gone.sent && attempt == 1 {
                // It had died before this request went out: a new one starts it.
                continue
            } catch {
                // Its program may or may not have started; starting it again could run it twice.
                throw RunnerError.startFailed("the supervisor \(executable) (pid \(server.pid)) exited while starting the trial")
            }
            switch answer {
            case .started(let pid, let startTime, let exit):
                return LocalProcess(pid: pid, statusPath: statusPath, exit: exit, writer: server, startTime: startTime)
            case .notStarted(let code):
                let exit = Supervisor.readStatus(statusPath)
                    ?? .startFailed("cannot start \(launch.argv[0]): \(SpawnError(code: code).message)\(SpawnError(code: code).hint)")
                return NotStarted(statusPath: statusPath, exit: exit)
            }
        }
        throw RunnerError.startFailed("the supervisor \(executable) exited while starting the trial")
    }

    /// A supervised trial is found by its supervisor's command line, which names the trial's status file,
    /// or, under a serving supervisor, as the leader of a process group whose environment names the trial's
    /// folder; one that already ended is found by its status file.
    public func find(_ launch: TrialLaunch) -> (any RunningTrial)? {
        guard mode != .unsupervised else { return nil }
        let statusPath = launch.logPath + ".status"
        let marker = Array("--status\0\(statusPath)\0".utf8)
        let folder = Array("\0\(Self.trialFolderVariable)=\(launch.trialDirectory)\0".utf8)
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap(Int32.init) ?? []
        for pid in pids where pid != getpid() {
            if let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
               data.count >= marker.count, Array(data).firstRange(of: marker) != nil {
                return AdoptedProcess(pid: pid, statusPath: statusPath, startTime: processStartTime(pid))
            }
            // The trial, not a process of its own that leads a group too: its parent is the serving supervisor.
            guard let family = processFamily(pid), family.group == pid,
                  let environment = readFile("/proc/\(pid)/environ", limit: 1 << 22), ([0] + environment).firstRange(of: folder) != nil,
                  let parent = readFile("/proc/\(family.parent)/cmdline", limit: 1 << 16), parent.split(separator: 0).last == Array("--serve".utf8)[...]
            else { continue }
            return AdoptedProcess(pid: pid, statusPath: statusPath, startTime: processStartTime(pid),
                                  writer: (family.parent, processStartTime(family.parent)))
        }
        if Supervisor.readStatus(statusPath) != nil {
            return AdoptedProcess(pid: 0, statusPath: statusPath, startTime: nil)
        }
        return nil
    }

    public func adopt(handle: [String: String]) -> (any RunningTrial)? {
        guard handle["runner"] == "local", let statusPath = handle["status"] else { return nil }
        guard let pid = handle["pid"].flatMap(Int32.init) else {
            // It never started, and its status file says why.
            return Supervisor.readStatus(statusPath).map { NotStarted(statusPath: statusPath, exit: $0) }
        }
        let writer = handle["supervisor"].flatMap(Int32.init).map { ($0, handle["supervisorStarted"]) }
        if let writer, let server = Self.liveServer(pid: writer.0), server.startTime == writer.1,
           let exit = server.follow(pid: pid, status: statusPath) {
            // Started by this process's own serving supervisor (a controller started again): followed through it.
            return LocalProcess(pid: pid, statusPath: statusPath, exit: exit, writer: server, startTime: handle["started"])
        }
        return AdoptedProcess(pid: pid, statusPath: statusPath, startTime: handle["started"], writer: writer, lookEvery: adoptedLookInterval)
    }
}

/// Why `posix_spawn` failed.
struct SpawnError: Error {
    let code: Int32

    var message: String { String(cString: strerror(code)) }
    var hint: String { code == ENOENT ? " (is it installed and on PATH?)" : code == EACCES ? " (is it executable?)" : "" }
}

/// Starts `argv` with an empty signal mask and default dispositions (so SIGTERM and SIGINT work
/// whatever thread this runs on), stdin from `input` (/dev/null when nil), and descriptors above 2 closed.
/// `output`: where stdout (and stderr, unless `errorToOutput` is false) go (inherited when nil). Leads a new
/// process group when asked.
func spawn(_ argv: [String], environment: [String: String]?, workingDirectory: String?, input: Int32? = nil, output: Int32?,
           errorToOutput: Bool = true, newProcessGroup: Bool) throws(SpawnError) -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let input {
        posix_spawn_file_actions_adddup2(&actions, input, 0)
    } else {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    if let output {
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        if errorToOutput { posix_spawn_file_actions_adddup2(&actions, output, 2) }
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
final class LocalProcess: RunningTrial, Sendable {
    let pid: pid_t
    /// Where a supervised trial's exit status appears.
    let statusPath: String?
    /// Set by the thread that reaps the process, or by the serving supervisor's reader, the moment it exits.
    private let exit: OnceValue<TrialExit>
    /// The serving supervisor that started it and writes its status.
    private let writer: SupervisorServer?
    /// When a served trial started, as its supervisor read it (it may be gone by the time the handle is asked for).
    private let startTime: String?

    /// A trial of the serving supervisor `writer`, which sets `exit`.
    init(pid: pid_t, statusPath: String, exit: OnceValue<TrialExit>, writer: SupervisorServer, startTime: String?) {
        self.pid = pid
        self.statusPath = statusPath
        self.exit = exit
        self.writer = writer
        self.startTime = startTime
    }

    /// A child of this process (the trial, or its own supervisor), reaped here.
    init(pid: pid_t, statusPath: String?) {
        self.pid = pid
        self.statusPath = statusPath
        writer = nil
        startTime = nil
        let exit = OnceValue<TrialExit>()
        self.exit = exit
        let reap: @Sendable () -> Void = { [exit] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
            let own: TrialExit = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
            let result = statusPath.flatMap(Supervisor.readStatus) ?? own
            // Whatever the trial left behind in its group goes with it.
            kill(-pid, SIGKILL)
            exit.set(result)
        }
        // Reaped once the watcher's pidfd says it exited; else waitpid blocks, on a thread of its own, never a
        // cooperative one.
        if ExitWatcher.shared?.whenExited(pid, reap) != true { Thread.detachNewThread(reap) }
    }

    var handle: [String: String] {
        var handle = ["pid": String(pid), "pgid": String(pid), "runner": "local"]
        if let statusPath { handle["status"] = statusPath }
        if let started = startTime ?? processStartTime(pid) { handle["started"] = started }
        if let writer {
            handle["supervisor"] = String(writer.pid)
            if let started = writer.startTime { handle["supervisorStarted"] = started }
        }
        return handle
    }

    /// Waits for the exit; a cancelled wait returns `.lost` at once and leaves the process running
    /// (as when the daemon shuts down and leaves its trials to the next one).
    func wait() async -> TrialExit {
        await exit.wait() ?? .lost
    }

    /// SIGTERM to the group, SIGKILL when it has not exited within `grace` (at once if the waiting
    /// task is cancelled).
    func terminate(grace: Duration) async {
        guard exit.value == nil else { return }
        kill(-pid, SIGTERM)
        if await exit.wait(upTo: grace) == nil { kill(-pid, SIGKILL) }
        _ = await wait()
    }
}

/// A served trial that could not start: its end is known at once.
final class NotStarted: RunningTrial, Sendable {
    let statusPath: String
    let exit: TrialExit

    init(statusPath: String, exit: TrialExit) {
        self.statusPath = statusPath
        self.exit = exit
    }

    var handle: [String: String] { ["runner": "local", "status": statusPath] }
    func wait() async -> TrialExit { exit }
    func terminate(grace: Duration) async {}
}

/// A supervised trial found again after the process that started it died: it is no child of ours, so
/// its end is learnt from a pidfd on `pid` (readable when it exits) and the status file its supervisor
/// writes. `pid` is the trial's own supervisor, or the trial itself when a serving supervisor (`writer`)
/// started it; the status then follows the trial's end as soon as the writer has seen it. Where pidfds
/// are missing (Linux before 5.3), the end is found by looking every 100 ms.
final class AdoptedProcess: RunningTrial, Sendable {
    let pid: pid_t
    let statusPath: String
    let startTime: String?
    /// The serving supervisor that writes the status, and when it started.
    let writer: (pid: pid_t, startTime: String?)?
    /// Set when the supervisor has exited, once something waits for it.
    private let supervisorExit: Mutex<OnceValue<Void>?> = Mutex(nil)

    /// How often it is looked at when no pidfd tells.
    let lookEvery: Duration

    init(pid: pid_t, statusPath: String, startTime: String?, writer: (pid: pid_t, startTime: String?)? = nil,
         lookEvery: Duration = .milliseconds(100)) {
        self.pid = pid
        self.statusPath = statusPath
        self.startTime = startTime
        self.writer = writer
        self.lookEvery = lookEvery
    }

    var handle: [String: String] {
        var handle = ["pid": String(pid), "pgid": String(pid), "runner": "local", "status": statusPath]
        if let startTime { handle["started"] = startTime }
        if let writer {
            handle["supervisor"] = String(writer.pid)
            if let started = writer.startTime { handle["supervisorStarted"] = started }
        }
        return handle
    }

    /// The serving supervisor that writes the status is still running.
    private var writerRunning: Bool {
        guard let writer, writer.pid > 0 else { return false }
        return processIsRunning(writer.pid) && (writer.startTime == nil || processStartTime(writer.pid) == writer.startTime)
    }

    /// The supervisor is still running (and is the same process: pids get reused). Pid 0 stands
    /// for a trial known only by its status file.
    private var supervisorRunning: Bool {
        pid > 0 && processIsRunning(pid) && (startTime == nil || processStartTime(pid) == startTime)
    }

    /// What tells when the supervisor exits: set at once when it is not running; `nil` when no
    /// pidfd can be had (then the caller looks on a timer).
    private func exitWatch() -> OnceValue<Void>? {
        supervisorExit.withLock { watch in
            if let watch { return watch }
            let made = OnceValue<Void>()
            let fd = pid > 0 ? knob_pidfd_open(pid) : -1
            if fd < 0 {
                // No such process: it has exited. Anything else: no pidfds here.
                guard pid <= 0 || errno == ESRCH else { return nil }
                made.set(())
            } else if !supervisorRunning {
                // The pid was reused by another process (or the supervisor is a zombie): ours is gone.
                close(fd)
                made.set(())
            } else if ExitWatcher.shared?.whenReadable(fd, { made.set(()) }) != true {
                // Without the watcher, poll blocks: it gets a thread of its own, never a cooperative one.
                Thread.detachNewThread {
                    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    while poll(&entry, 1, -1) < 0, errno == EINTR {}
                    close(fd)
                    made.set(())
                }
            }
            watch = made
            return made
        }
    }

    /// How long a served trial's status is waited for after the trial has ended, while its writer runs.
    static let statusWait: Duration = .seconds(60)

    func wait() async -> TrialExit {
        if let watch = exitWatch() {
            guard await watch.wait() != nil else { return .lost }
        }
        var trialGone: ContinuousClock.Instant?
        while true {
            if let exit = Supervisor.readStatus(statusPath) {
                if pid > 0 { kill(-pid, SIGKILL) }
                return exit
            }
            var pause = lookEvery
            if !supervisorRunning {
                if let exit = Supervisor.readStatus(statusPath) { return exit }
                let gone = trialGone ?? ContinuousClock.now
                trialGone = gone
                // A writer that has not written within a minute of the end could not (a full disk).
                if writerRunning, ContinuousClock.now - gone < Self.statusWait {
                    // The trial has ended and its supervisor, which reaps it first, is about to write the status.
                    pause = .milliseconds(5)
                } else {
                    if pid > 0, processStartTime(pid) == startTime { kill(-pid, SIGKILL) }
                    return .lost
                }
            }
            if Task.isCancelled { return .lost }
            try? await Task.sleep(for: pause)
        }
    }

    func terminate(grace: Duration) async {
        guard supervisorRunning else { return }
        kill(-pid, SIGTERM)
        if let watch = exitWatch() {
            if await watch.wait(upTo: grace) == nil, supervisorRunning { kill(-pid, SIGKILL) }
            return
        }
        let deadline = ContinuousClock.now + grace
        while supervisorRunning, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if supervisorRunning { kill(-pid, SIGKILL) }
    }
}

/// The fields of /proc/PID/stat that follow the command, from the state (field 3) on, so that field n is at
/// index n − 3; nil when the process is gone. The command is skipped up to its last ")", as it may hold
/// spaces and parentheses.
private func processStatFields(_ pid: pid_t) -> [ArraySlice<UInt8>]? {
    guard let bytes = readFile("/proc/\(pid)/stat", limit: 1 << 16), let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
    return bytes[(close + 1)...].split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") })
}

/// The parent and the process group of process `pid` (fields 4 and 5 of /proc/PID/stat).
func processFamily(_ pid: pid_t) -> (parent: pid_t, group: pid_t)? {
    guard let fields = processStatFields(pid), fields.count > 2, let parent = pid_t(String(decoding: fields[1], as: UTF8.self)),
          let group = pid_t(String(decoding: fields[2], as: UTF8.self)) else { return nil }
    return (parent, group)
}

/// When process `pid` started (clock ticks since boot, field 22 of /proc/PID/stat), to tell it from a later
/// process that got the same pid.
func processStartTime(_ pid: pid_t) -> String? {
    guard let fields = processStatFields(pid), fields.count > 19 else { return nil }
    return String(decoding: fields[19], as: UTF8.self)
}
