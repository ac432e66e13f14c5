import Foundation
import Testing
@testable import Knob

@Suite struct FileLockTests {
    /// The descriptor this process has open on `path`, found through /proc/self/fd.
    func descriptor(of path: String) throws -> Int32 {
        let found = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap(Int32.init).first {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == path
        }
        return try #require(found, "no descriptor open on \(path)")
    }

    @Test func aReleasedLockIsFreeWhileAProcessStartedMeanwhileStillSharesTheFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("knob-lock-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = "\(folder)/one.lock"
        let lock = try FileLock(path: path)
        #expect(FileLock.isHeld(path: path))
        #expect(throws: FileLock.Busy.self) { _ = try FileLock(path: path) }

        // A child that shares the lock's open file, as one forked by another thread does until it execs.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, try descriptor(of: path), 3)
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("30"), nil]
        defer { argv.forEach { free($0) } }
        #expect(posix_spawn(&pid, "/bin/sleep", &actions, nil, argv, environ) == 0)
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }

        lock.release()
        #expect(!FileLock.isHeld(path: path), "the lock outlived its release in the child's copy of the file")
        let again = try FileLock(path: path)
        #expect(FileLock.isHeld(path: path))
        again.release()
        #expect(!FileLock.isHeld(path: path))
    }
}
