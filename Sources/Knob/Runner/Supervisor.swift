import Foundation

/// `knob __supervise --status FILE -- COMMAND...`: runs COMMAND in the caller's process group
/// (stdout, stderr and working directory inherited), waits for it, and writes how it ended to FILE
/// as JSON (`{"exitCode": 3}`, `{"signal": 9}` or `{"startError": "..."}`), atomically. It ignores
/// SIGTERM, SIGINT and SIGHUP itself, so that stopping the group leaves it to record the end.
public enum Supervisor {
    /// The hidden subcommand of `knob` and `knobd`.
    public static let command = "__supervise"

    /// Runs the supervisor with the arguments that follow `__supervise`, and exits.
    public static func main(_ arguments: [String]) -> Never {
        guard arguments.count >= 4, arguments[0] == "--status", arguments[2] == "--" else {
            FileHandle.standardError.write(Data("usage: \(command) --status FILE -- COMMAND [ARG...]\n".utf8))
            exit(2)
        }
        let statusPath = arguments[1]
        let argv = Array(arguments.dropFirst(3))
        for signalNumber in [SIGTERM, SIGINT, SIGHUP] { signal(signalNumber, SIG_IGN) }
        // The trial's files get the user's modes; the status file stays private (written with 0600).
        UserUmask.restore()
        let child: pid_t
        do {
            child = try spawn(argv, environment: nil, workingDirectory: nil, output: nil, newProcessGroup: false)
        } catch {
            write(["startError": "cannot start \(argv[0]): \(error.message)\(error.hint)"], to: statusPath)
            exit(0)
        }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0, errno == EINTR {}
        if (status & 0x7f) == 0 {
            write(["exitCode": Int((status >> 8) & 0xff)], to: statusPath)
        } else {
            write(["signal": Int(status & 0x7f)], to: statusPath)
        }
        exit(0)
    }

    private static func write(_ object: [String: Any], to path: String) {
        guard let data = try? JSONSerialization.data(withJSONObject: object) else { return }
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let written = data.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == data.count else {
            unlink(temporary)
            return
        }
        rename(temporary, path)
    }

    /// How a supervised trial ended, once its status file exists.
    static func readStatus(_ path: String) -> TrialExit? {
        guard let bytes = readFile(path, limit: 1 << 20) else { return nil }
        if let exit = plainExit(bytes) { return exit }
        guard let status = try? JSONDecoder().decode(Status.self, from: Data(bytes)) else { return nil }
        if let code = status.exitCode { return .exited(code) }
        if let signal = status.signal { return .signaled(signal) }
        if let message = status.startError { return .startFailed(message) }
        return nil
    }

    /// `{"exitCode":N}` or `{"signal":N}` as both supervisors write them (no spaces, N of at most three
    /// digits), read without a JSON decoder: every trial's end reads one. Anything else is nil.
    static func plainExit(_ bytes: [UInt8]) -> TrialExit? {
        for (key, make) in [(Array(#"{"exitCode":"#.utf8), TrialExit.exited), (Array(#"{"signal":"#.utf8), TrialExit.signaled)] {
            guard bytes.count > key.count + 1, bytes.count <= key.count + 4, bytes.starts(with: key), bytes.last == UInt8(ascii: "}") else { continue }
            let digits = bytes[key.count..<(bytes.count - 1)]
            guard digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
            return make(digits.reduce(Int32(0)) { $0 * 10 + Int32($1 - UInt8(ascii: "0")) })
        }
        return nil
    }

    /// The status file's one key.
    private struct Status: Decodable {
        var exitCode: Int32?
        var signal: Int32?
        var startError: String?
    }
}

/// The absolute path of the running executable (to start its own `__supervise` mode).
public func currentExecutablePath() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    if count > 0 { return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    return KnobHome.absolute(CommandLine.arguments[0])
}
