import Foundation

/// An exclusive `flock` on a file that holds the owner's pid, held until released or the process
/// exits: one process per experiment (`$KNOB_HOME/locks/NAME.lock`), one daemon per home.
public final class FileLock: @unchecked Sendable {
    private var fd: Int32

    /// Someone else holds the lock.
    public struct Busy: Error {
        /// The holder's pid, as it wrote it.
        public let holder: String
    }

    public init(path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw KnobError.cannotRead(path: path, reason: String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            // deinit runs when this initializer throws: leave it nothing to close a second time (the number
            // may belong to another descriptor by then, such as a server's socket).
            release()
            throw Busy(holder: holder)
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    /// Where the lock of `experiment` in `home` is.
    public static func experimentPath(_ experiment: String, home: KnobHome) -> String {
        "\(home.path)/locks/\(experiment).lock"
    }

    /// Whether some process (this one included) holds the lock at `path` now.
    public static func isHeld(path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // A lock taken through another open of the file conflicts, even within this process.
        guard flock(fd, LOCK_SH | LOCK_NB) == 0 else { return errno == EWOULDBLOCK }
        flock(fd, LOCK_UN)
        return false
    }

    /// The pid the holder of the lock at `path` wrote, when some process holds it now.
    public static func holder(path: String) -> String? {
        guard isHeld(path: path) else { return nil }
        return (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The lock that makes one process drive `experiment` in `home`.
    public static func experiment(_ experiment: String, home: KnobHome) throws -> FileLock {
        do {
            return try FileLock(path: experimentPath(experiment, home: home))
        } catch let busy as Busy {
            throw KnobError.experimentBusy(name: experiment, pid: busy.holder)
        }
    }

    public func release() {
        guard fd >= 0 else { return }
        // Unlocked before closing: a process forked from this one in the meantime shares the open file
        // until it execs, and with only the close the lock would stay held in its copy until then.
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
