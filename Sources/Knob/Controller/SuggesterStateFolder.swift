import Foundation
import KnobAlgorithms

/// A suggester's state store on disk: one file per name in a folder of the experiment's own
/// (`KnobHome.stateDirectory(experiment:)`).
///
/// A write goes to a temporary file of its own in the folder, then takes the name by a rename, so
/// that a reader (another thread, or the next process) sees the previous bytes, the new ones, or
/// (for a moment) none, never part of a file. The old file is unlinked before the rename: renaming
/// over it would make ext4 start writing the new one back at once (its `auto_da_alloc`), which
/// costs a few hundred microseconds a time. Nothing here is synced to disk: after a crash a
/// file may be missing, old, truncated or empty, which the suggester tells and ignores (see
/// `SuggesterStateStore`).
public struct SuggesterStateFolder: SuggesterStateStore {
    public let path: String
    /// Files larger than this are not read.
    static let maximumSize = 256 << 20

    public init(path: String) {
        self.path = path
    }

    public func read(_ name: String) -> [UInt8]? {
        guard Self.isPlain(name) else { return nil }
        return readFile("\(path)/\(name)", limit: Self.maximumSize)
    }

    public func write(_ name: String, _ bytes: [UInt8]) {
        guard Self.isPlain(name) else { return }
        let target = "\(path)/\(name)"
        let temporary = "\(path)/.\(name).\(getpid()).\(UInt64.random(in: 0...UInt64.max)).tmp"
        var fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0, errno == ENOENT {
            // The folder and its parent (the home's `state/`) are the owner's only, whatever the umask.
            try? makePrivateDirectory(path)
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        }
        guard fd >= 0 else { return }
        let written = bytes.withUnsafeBytes { buffer -> Int in
            var done = 0
            while done < buffer.count {
                let n = Foundation.write(fd, buffer.baseAddress! + done, buffer.count - done)
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { break }
                done += n
            }
            return done
        }
        let closed = close(fd) == 0
        guard written == bytes.count, closed, unlink(target) == 0 || errno == ENOENT, rename(temporary, target) == 0 else {
            unlink(temporary)
            return
        }
    }

    /// A name that stays inside the folder and is not one of its temporary files.
    private static func isPlain(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && !name.contains("/")
    }
}
