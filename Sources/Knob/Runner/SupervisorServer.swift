import Foundation
import Synchronization

/// One `knob-supervise --serve` that starts and waits for the trials of this process: the protocol is at
/// the head of Sources/knob-supervise/main.c. A trial then costs one fork of a small process instead of a
/// supervisor of its own started from this (many-threaded) one, while keeping what makes a supervisor worth
/// having: it outlives this process, and writes each trial's status file when the trial ends, so that a
/// restarted knob can follow the trial again and learn how it ended.
///
/// Each trial leads a process group of its own (its pid). The server ignores SIGTERM, SIGINT and SIGHUP and
/// leads a group of its own, so stopping a trial's group or the terminal's leaves it to record the end.
final class SupervisorServer: Sendable {
    /// What a start request came to.
    enum Answer: Sendable {
        /// The program runs as `pid`, started at `startTime` (as `processStartTime` gives it); `exit` is set when the
        /// server has seen it end and written its status.
        case started(pid: pid_t, startTime: String?, exit: OnceValue<TrialExit>)
        /// Nothing started; the status file says why when it could be written.
        case notStarted(code: Int32)
    }

    /// The server died; `sent` says whether the request had gone out (then its program may have started).
    struct Gone: Error {
        let sent: Bool
    }

    let pid: pid_t
    let startTime: String?
    /// This process's end of the socket whose other end is the server's stdin and stdout.
    private let socket: Int32
    /// Held while a request is written, so that requests go whole; nil once the socket is closed, so that no request
    /// goes to a descriptor that has been given to something else since.
    private let sending: Mutex<Int32?>

    private struct State {
        /// Starts asked for and not yet answered, by the request's number.
        var starts: [UInt32: CheckedContinuation<Answer, any Error>] = [:]
        var lastRequest: UInt32 = 0
        /// The trials running, by pid, with their status files.
        var running: [pid_t: (status: String, exit: OnceValue<TrialExit>)] = [:]
        /// The last trials that ended, by pid, for `follow`; `endedOrder` is oldest first.
        var ended: [pid_t: (status: String, exit: TrialExit)] = [:]
        var endedOrder: [pid_t] = []
        /// What each start asked for, by request number, until it is answered.
        var statusOfRequest: [UInt32: String] = [:]
        var gone = false
    }

    private let state = Mutex(State())

    /// How long a request may wait to be written before the server counts as wedged: it reads requests as they come,
    /// so a full socket means it has stopped (a SIGSTOP, say), and the thread writing must not wait forever.
    static let sendTimeout: Duration = .seconds(30)

    /// `sendTimeout` bounds the wait to write one request (the default but in tests).
    init(executable: String, sendTimeout: Duration = SupervisorServer.sendTimeout) throws(SpawnError) {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw SpawnError(code: errno)
        }
        let (seconds, attoseconds) = sendTimeout.components
        var limit = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(ends[0], SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        defer { close(ends[1]) }
        do {
            pid = try spawn([executable, "--serve"], environment: nil, workingDirectory: nil, input: ends[1], output: ends[1],
                            errorToOutput: false, newProcessGroup: true)
        } catch {
            close(ends[0])
            throw error
        }
        socket = ends[0]
        sending = Mutex(ends[0])
        startTime = processStartTime(pid)
        Thread.detachNewThread { [self] in readAnswers() }
    }

    var isGone: Bool { state.withLock { $0.gone } }

    /// How many ended trials `follow` still knows.
    static let endedKept = 4096

    /// The end of trial `pid` with status file `status`, started by this server: set when it ends (or at once if it
    /// has ended); nil when this server does not know it. A controller that starts again in the same process follows
    /// its trials this way, even where no status file could be written (a full disk).
    func follow(pid: pid_t, status: String) -> OnceValue<TrialExit>? {
        state.withLock { state in
            if let trial = state.running[pid], trial.status == status { return trial.exit }
            guard let trial = state.ended[pid], trial.status == status else { return nil }
            let exit = OnceValue<TrialExit>()
            exit.set(trial.exit)
            return exit
        }
    }

    /// Starts `argv` with exactly `environment`, in `workingDirectory`, its output appended to `logPath`.
    func start(argv: [String], environment: [String: String], workingDirectory: String, logPath: String,
               statusPath: String) async throws -> Answer {
        var request = Self.request(argv: argv, environment: environment, workingDirectory: workingDirectory,
                                   logPath: logPath, statusPath: statusPath)
        return try await withCheckedThrowingContinuation { continuation in
            let number = state.withLock { state -> UInt32? in
                guard !state.gone else { return nil }
                state.lastRequest &+= 1
                state.starts[state.lastRequest] = continuation
                state.statusOfRequest[state.lastRequest] = statusPath
                return state.lastRequest
            }
            guard let number else { return continuation.resume(throwing: Gone(sent: false)) }
            withUnsafeBytes(of: number) { request.replaceSubrange(12..<16, with: $0) }
            // A failed write means the server is gone, or wedged past `sendTimeout` with part of a request written, which
            // it could not read sense from: it is killed. The reader then fails every start still waiting (this one too, if
            // it was not yet failed when the socket was closed) and every trial of the server ends as lost.
            let sent = sending.withLock { socket in
                socket.map { socket in
                    let whole = request.withUnsafeBytes { sendAll(socket, $0) }
                    // Not yet reaped while the socket is open (the reader closes it first), so the pid is still the server's.
                    if !whole { kill(pid, SIGKILL) }
                    return whole
                }
            }
            if sent == nil, let waiting = state.withLock({ $0.starts.removeValue(forKey: number) }) {
                waiting.resume(throwing: Gone(sent: false))
            }
        }
    }

    /// Four native 32-bit words (the size of the strings, argc, envc, the request's number, here 0), then the
    /// NUL-terminated strings.
    static func request(argv: [String], environment: [String: String], workingDirectory: String, logPath: String,
                        statusPath: String) -> [UInt8] {
        var strings: [UInt8] = []
        strings.reserveCapacity(4096)
        func add(_ text: String) {
            strings.append(contentsOf: text.utf8)
            strings.append(0)
        }
        add(statusPath)
        add(logPath)
        add(workingDirectory)
        argv.forEach(add)
        for (name, value) in environment {
            strings.append(contentsOf: name.utf8)
            strings.append(UInt8(ascii: "="))
            add(value)
        }
        let words = [UInt32(strings.count), UInt32(argv.count), UInt32(environment.count), 0]
        var request = words.withUnsafeBytes { [UInt8]($0) }
        request.append(contentsOf: strings)
        return request
    }

    private func readAnswers() {
        var chunk = [UInt8](repeating: 0, count: 4096)
        var bytes: [UInt8] = []
        while true {
            let count = read(socket, &chunk, chunk.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[0..<count])
            var at = 0
            while bytes.count - at >= 24 {
                let (kind, pid, value, number, start) = bytes.withUnsafeBytes {
                    ($0.loadUnaligned(fromByteOffset: at, as: Int32.self), $0.loadUnaligned(fromByteOffset: at + 4, as: Int32.self),
                     $0.loadUnaligned(fromByteOffset: at + 8, as: Int32.self), $0.loadUnaligned(fromByteOffset: at + 12, as: UInt32.self),
                     $0.loadUnaligned(fromByteOffset: at + 16, as: UInt64.self))
                }
                take(kind: kind, pid: pid, value: value, request: number, start: start)
                at += 24
            }
            bytes.removeFirst(at)
        }
        // The server died (nothing else closes its end): its trials can no longer be followed.
        let (starts, running) = state.withLock { state in
            state.gone = true
            defer { state.starts = [:]; state.running = [:] }
            return (state.starts, state.running)
        }
        starts.values.forEach { $0.resume(throwing: Gone(sent: true)) }
        for (pid, trial) in running {
            kill(-pid, SIGKILL)
            trial.exit.set(.lost)
        }
        sending.withLock { socket in
            if let open = socket { close(open) }
            socket = nil
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
    }

    private func take(kind: Int32, pid: pid_t, value: Int32, request: UInt32, start: UInt64) {
        switch kind {
        case 1, 2:
            let exit = OnceValue<TrialExit>()
            let continuation = state.withLock { state -> CheckedContinuation<Answer, any Error>? in
                guard let continuation = state.starts.removeValue(forKey: request) else { return nil }
                let status = state.statusOfRequest.removeValue(forKey: request) ?? ""
                if kind == 1 { state.running[pid] = (status, exit) }
                return continuation
            }
            continuation?.resume(returning: kind == 1 ? .started(pid: pid, startTime: start > 0 ? String(start) : nil, exit: exit)
                                                      : .notStarted(code: value))
        case 3:
            let end: TrialExit = (value & 0x7f) == 0 ? .exited((value >> 8) & 0xff) : .signaled(value & 0x7f)
            let exit = state.withLock { state -> OnceValue<TrialExit>? in
                guard let trial = state.running.removeValue(forKey: pid) else { return nil }
                if state.ended.updateValue((trial.status, end), forKey: pid) == nil { state.endedOrder.append(pid) }
                if state.endedOrder.count > Self.endedKept { state.ended.removeValue(forKey: state.endedOrder.removeFirst()) }
                return trial.exit
            }
            guard let exit else { return }
            // Whatever the trial left behind in its group goes with it.
            kill(-pid, SIGKILL)
            exit.set(end)
        default:
            return
        }
    }
}

/// Writes all of `bytes` to a socket (without SIGPIPE when the other end is gone); false when it could not, or when
/// the socket's send timeout passed.
private func sendAll(_ socket: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var at = 0
    while at < bytes.count {
        let sent = send(socket, bytes.baseAddress! + at, bytes.count - at, Int32(MSG_NOSIGNAL))
        if sent < 0, errno == EINTR { continue }
        guard sent > 0 else { return false }
        at += sent
    }
    return true
}
