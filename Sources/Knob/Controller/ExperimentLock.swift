import Foundation

/// Makes sure only one process drives an experiment: an exclusive `flock` on
/// `$KNOB_HOME/locks/NAME.lock`, held until this value is released or the process exits.
public final class ExperimentLock: @unchecked Sendable {
    private var fd: Int32

    /// Takes the lock, or throws `KnobError.experimentBusy` naming the process that holds it.
    public init(home: KnobHome, experiment: String) throws {
        let dir = "\(home.path)/locks"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = "\(dir)/\(experiment).lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw KnobError.cannotRead(path: path, reason: String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            throw KnobError.experimentBusy(name: experiment, pid: holder)
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    public func release() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
    }

    deinit { release() }
}
