import Foundation

/// The bytes of the file at `path`, read with one open and as few reads as it takes (a regular file's size is
/// asked first; a /proc file, whose size reads as 0, is read to its end); nil when it cannot be opened or read, or
/// holds more than `limit` bytes. Every trial's end reads its status file and its supervisor's /proc stat this way,
/// and a suggester its state.
func readFile(_ path: String, limit: Int) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var info = stat()
    let size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
    guard size <= limit else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(size)
    var chunk = [UInt8](repeating: 0, count: max(4096, min(size + 1, limit + 1)))
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0, errno == EINTR { continue }
        guard count >= 0 else { return nil }
        if count == 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<count])
        if bytes.count > limit { return nil }
    }
}

/// Makes `path` and any missing folder above it with mode 0700 whatever the umask, as FileManager's
/// `createDirectory(atPath:withIntermediateDirectories:attributes:)` does, in the system calls alone: a trial's start
/// makes two folders and finds a third there. A folder that is already there is left as it is.
func makePrivateDirectory(_ path: String) throws {
    if mkdir(path, 0o700) == 0 {
        // Under knob's own umask the mode is already 0700.
        if !UserUmask.isRestricted { chmod(path, 0o700) }
        return
    }
    let code = errno
    var about = stat()
    if code == EEXIST, stat(path, &about) == 0, about.st_mode & S_IFMT == S_IFDIR { return }
    let parent = (path as NSString).deletingLastPathComponent
    guard code == ENOENT, !parent.isEmpty, parent != path else {
        throw RunnerError.startFailed("cannot make the folder \(path): \(String(cString: strerror(code)))")
    }
    try makePrivateDirectory(parent)
    try makePrivateDirectory(path)
}
