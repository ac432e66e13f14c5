import Foundation
import Testing
@testable import Knob

/// What knob reads of a trial's process at each start and end: the supervisor's status file and the
/// process's start time in /proc.
@Suite struct TrialEndReadingTests {
    /// What the status file said before it had a reader of its own: JSONDecoder's reading of it.
    func decoded(_ text: String) -> TrialExit? {
        struct Status: Decodable {
            var exitCode: Int32?
            var signal: Int32?
            var startError: String?
        }
        guard let status = try? JSONDecoder().decode(Status.self, from: Data(text.utf8)) else { return nil }
        if let code = status.exitCode { return .exited(code) }
        if let signal = status.signal { return .signaled(signal) }
        return status.startError.map { .startFailed($0) }
    }

    /// Both supervisors' plain forms are read without the decoder, and every other text as the
    /// decoder reads it (spaces, other keys, numbers out of a status's range, broken JSON).
    @Test(arguments: [
        (#"{"exitCode":0}"#, true), (#"{"exitCode":3}"#, true), (#"{"exitCode":255}"#, true), (#"{"signal":9}"#, true),
        (#"{"signal":64}"#, true), (#"{"exitCode": 3}"#, false), (#"{ "signal":9 }"#, false), (#"{"exitCode":-1}"#, false),
        (#"{"exitCode":1234}"#, false), (#"{"exitCode":}"#, false), (#"{"exitCode":1x}"#, false), (#"{"exitCode":1"#, false),
        (#"{"startError":"cannot start \/x: No such file or directory"}"#, false), (#"{"signal":"9"}"#, false), ("", false),
    ])
    func theStatusFileReadsAsTheDecoderReadsIt(text: String, plain: Bool) throws {
        let path = makeTemporaryDirectory("knob-status") + "/trial.log.status"
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        #expect((Supervisor.plainExit(Array(text.utf8)) != nil) == plain, "\(text) read plainly: \(plain)")
        #expect(Supervisor.readStatus(path) == decoded(text), "\(text)")
    }

    /// Fields 4, 5 and 22 of /proc/PID/stat, found after the last ")": the command name in parentheses
    /// may hold spaces and parentheses of its own.
    @Test func theFamilyAndStartTimeAreReadWhateverTheCommandIsNamed() async throws {
        let folder = makeTemporaryDirectory("knob-stat")
        let odd = "\(folder)/odd) (x y"
        try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: odd)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: odd)
        process.arguments = ["30"]
        try process.run()
        defer { process.terminate() }
        let stat = try String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8)
        #expect(stat.contains("(odd) (x y)"), "the kernel names it by its file: \(stat)")
        let afterName = stat[stat.index(after: try #require(stat.lastIndex(of: ")")))...].split(separator: " ")
        #expect(processStartTime(process.processIdentifier) == String(afterName[19]))
        #expect(processStartTime(getpid()).flatMap(Int.init) != nil)
        #expect(processStartTime(-5) == nil)
        let family = try #require(processFamily(process.processIdentifier))
        #expect(family.parent == getpid() && family.group == pid_t(afterName[2]), "\(family) from \(stat)")
        #expect(processFamily(-5) == nil)
    }
}

/// Values in messages and progress lines read as `%.6g` always did through String(format:).
@Suite struct ValueFormatTests {
    @Test func valuesAreFormattedAsStringFormatFormatsThem() {
        var generator = SystemRandomNumberGenerator()
        let special: [Double] = [0, -0.0, 1, -1, 0.5, 0.97123456, 1e-5, 123456, 1234567, 1e100, -1e-300, 5e-324, .greatestFiniteMagnitude,
                                 .leastNormalMagnitude, .infinity, -.infinity, .nan, 0.1 + 0.2, 999999.5, 9.999995e-5]
        let random = (0..<20_000).map { _ in Double(bitPattern: generator.next()) }
        let typical = (0..<20_000).map { _ in Double.random(in: -2...2, using: &generator) * pow(10, Double(Int.random(in: -8...8, using: &generator))) }
        for value in special + random + typical {
            #expect(formatValue(value) == String(format: "%.6g", value), "\(value.bitPattern)")
        }
    }
}
