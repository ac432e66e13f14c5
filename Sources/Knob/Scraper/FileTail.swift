import Foundation

/// Reads a growing file from an offset, returning whatever has been appended since the last read.
/// Reads of a regular file return at once, so this never blocks a thread for long.
final class FileTail {
    let path: String
    private(set) var offset: Int64
    private var fd: Int32 = -1

    init(path: String, offset: Int64 = 0) {
        self.path = path
        self.offset = offset
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// The bytes appended since the last call (empty when there are none, or no file yet).
    func read(maxBytes: Int = 1 << 18) -> [UInt8] {
        if fd < 0 {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { return [] }
        }
        var buffer = [UInt8](repeating: 0, count: maxBytes)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, maxBytes, off_t(offset)) }
        guard count > 0 else { return [] }
        offset += Int64(count)
        return Array(buffer[0..<count])
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
