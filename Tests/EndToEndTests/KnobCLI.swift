import Foundation
import Knob
import Testing

/// The `knob` executable built beside the tests.
let knobExecutable: String = {
    let candidates = [
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("knob").path,
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/debug/knob").standardized.path,
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
}()

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `knob` with `arguments` and waits for it without blocking a cooperative thread.
func knob(_ arguments: [String], in directory: String? = nil) async throws -> CommandResult {
    try await runToEnd(knobExecutable, arguments, in: directory)
}

/// Runs `executable` to its end, with stdout and stderr captured.
func runToEnd(_ executable: String, _ arguments: [String], in directory: String? = nil) async throws -> CommandResult {
    let dir = makeTemporaryDirectory("knob-cli")
    let out = "\(dir)/stdout", err = "\(dir)/stderr"
    FileManager.default.createFile(atPath: out, contents: nil)
    FileManager.default.createFile(atPath: err, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
    process.standardInput = FileHandle.nullDevice
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do { try process.run() } catch { continuation.resume(throwing: error) }
    }
    return CommandResult(status: status, stdout: try String(contentsOfFile: out, encoding: .utf8),
                         stderr: try String(contentsOfFile: err, encoding: .utf8))
}

func makeTemporaryDirectory(_ label: String = "knob-e2e") -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func write(_ text: String, to path: String, executable: Bool = false) throws {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    if executable { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path) }
}

func json(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
}
