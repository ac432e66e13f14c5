import Foundation

/// Reads a growing file from an offset, returning whatever has been appended since the last read.
/// Reads of a regular file return at once, so this never blocks a thread for long. A file that is
/// replaced (a new file at the path) or truncated is read again from its start, and `startedOver`
/// says so once.
final class FileTail {
    let path: String
    private(set) var offset: Int64
    private var fd: Int32 = -1
    private var inode: ino_t = 0
    private var device: dev_t = 0
    private var restarted = false

    init(path: String, offset: Int64 = 0) {
        self.path = path
        self.offset = offset
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Whether reading started over at the start of a new or truncated file since the last call:
    /// what was read before belongs to another file.
    func startedOver() -> Bool {
        defer { restarted = false }
        return restarted
    }

    /// The bytes appended since the last call (empty when there are none, or no file yet).
    func read(maxBytes: Int = 1 << 18) -> [UInt8] {
        if fd < 0 {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { return [] }
            var info = stat()
            if fstat(fd, &info) == 0 { (inode, device) = (info.st_ino, info.st_dev) }
        }
        // A regular file is read for what it holds past the offset, into an array of that size: a buffer of
        // maxBytes, zeroed and freed again at each read, cost more than the read itself on a short log.
        var info = stat()
        var wanted = maxBytes
        if fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG {
            wanted = Int(Swift.max(0, Swift.min(Int64(maxBytes), Int64(info.st_size) - offset)))
        }
        let bytes = wanted == 0 ? [] : [UInt8](unsafeUninitializedCapacity: wanted) { buffer, initialized in
            initialized = Swift.max(0, pread(fd, buffer.baseAddress, wanted, off_t(offset)))
        }
        guard !bytes.isEmpty else {
            // Nothing new here: the path may name another file now, or this one may have shrunk.
            if replacedOrTruncated() { return read(maxBytes: maxBytes) }
            return []
        }
        offset += Int64(bytes.count)
        return bytes
    }

    /// Reopens the path, from its start, when it now names another file or the file is shorter
    /// than what was read; whether it did.
    private func replacedOrTruncated() -> Bool {
        var current = stat(), opened = stat()
        guard fstat(fd, &opened) == 0 else { return false }
        let replaced = stat(path, &current) == 0 && (current.st_ino != inode || current.st_dev != device)
        let truncated = Int64(opened.st_size) < offset
        guard replaced || truncated else { return false }
        if replaced {
            close(fd)
            fd = -1
        }
        offset = 0
        restarted = true
        return true
    }
}

/// The last `count` non-empty lines of a file (from its last 8 KiB), for failure messages.
func lastLines(ofFile path: String, count: Int) -> [String] {
    guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
    defer { try? handle.close() }
    let size = (try? handle.seekToEnd()) ?? 0
    try? handle.seek(toOffset: size > 8192 ? size - 8192 : 0)
    let data = (try? handle.readToEnd()) ?? Data()
    let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).map { String($0.prefix(300)) }
    return Array(lines.suffix(count))
}
