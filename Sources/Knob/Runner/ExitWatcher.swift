import CSpawn
import Foundation
import Synchronization

/// One thread that waits for the exits of many processes at once, through their pidfds in an epoll set, and runs
/// each one's action when it exits: the supervisors of the trials started here and of those adopted after a
/// restart. Each wait used to have a thread of its own; at a few hundred trials a second, making and ending those
/// threads cost more than the waiting.
final class ExitWatcher: Sendable {
    /// The process-wide watcher; nil where epoll or pidfds are missing (then each wait has a thread of its own).
    static let shared: ExitWatcher? = ExitWatcher()

    private let epoll: Int32
    /// What to run when the process behind each pidfd exits.
    private let actions = Mutex<[Int32: @Sendable () -> Void]>([:])

    private init?() {
        let epoll = knob_epoll_create()
        guard epoll >= 0 else { return nil }
        self.epoll = epoll
        Thread.detachNewThread { [self] in run() }
    }

    /// Runs `action` on the watcher's thread once process `pid` has exited (at once if it already has); false when
    /// no pidfd can be had for it (then the caller waits its own way). The action must be quick: it holds up the
    /// other exits.
    func whenExited(_ pid: pid_t, _ action: @escaping @Sendable () -> Void) -> Bool {
        let fd = knob_pidfd_open(pid)
        guard fd >= 0 else { return false }
        if whenReadable(fd, action) { return true }
        close(fd)
        return false
    }

    /// Runs `action` on the watcher's thread once `fd` (a pidfd) is readable, and closes `fd`; false, with `fd`
    /// left open, when it cannot be watched.
    func whenReadable(_ fd: Int32, _ action: @escaping @Sendable () -> Void) -> Bool {
        actions.withLock { $0[fd] = action }
        guard knob_epoll_add(epoll, fd) == 0 else {
            _ = actions.withLock { $0.removeValue(forKey: fd) }
            return false
        }
        return true
    }

    private func run() {
        var ready = [Int32](repeating: -1, count: 64)
        while true {
            let count = knob_epoll_take(epoll, &ready, Int32(ready.count))
            guard count > 0 else { continue }  // EINTR
            for fd in ready[0..<Int(count)] {
                let action = actions.withLock { $0.removeValue(forKey: fd) }
                close(fd)
                action?()
            }
        }
    }
}
