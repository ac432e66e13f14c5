import Foundation
import Synchronization

/// Who may read what knob writes. knob's own files (the store, logs, status files, locks, the
/// socket) are its user's only; what a trial writes keeps the user's usual modes.
///
/// `knob` and `knobd` call `restrictForKnob()` first thing: from then on they create files under
/// umask 077, and the user's umask travels in `KNOB_USER_UMASK` to each trial's supervisor, which
/// puts it back (`restore()`) before it starts the trial.
public enum UserUmask {
    static let variable = "KNOB_USER_UMASK"

    /// Makes every file this process creates from now on private, and keeps the umask it replaces
    /// for the trials.
    public static func restrictForKnob() {
        let user = umask(0o077)
        setenv(variable, String(user, radix: 8), 1)
        restricted.store(true, ordering: .releasing)
    }

    /// Whether this process's umask is knob's own 077 (set by `restrictForKnob`, not put back since), under which a
    /// folder made with mode 0700 has exactly that mode.
    static var isRestricted: Bool { restricted.load(ordering: .acquiring) }
    private static let restricted = Atomic<Bool>(false)

    /// The user's umask as `restrictForKnob` kept it (octal digits), if it did.
    static var kept: String? {
        getenv(variable).map { String(cString: $0) }
    }

    /// Puts back the user's umask kept by `restrictForKnob`: before a trial starts, so that what
    /// it writes gets the modes the user expects, and before `knob daemon` becomes knobd, so that
    /// knobd keeps the user's umask for its trials.
    public static func restore() {
        guard let text = kept, let mask = mode_t(text, radix: 8), mask <= 0o777 else { return }
        restricted.store(false, ordering: .releasing)
        umask(mask)
    }
}
