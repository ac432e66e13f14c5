import ArgumentParser
import Foundation
import Knob

/// `knob dashboard`: the dashboard's pages over a store, read-only, with no knobd needed (knobd's
/// read-only mode, started beside this executable with a fresh token).
struct DashboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve the dashboard over a store, read-only, on 127.0.0.1 with a fresh token, and print its URL.",
        discussion: """
            Works beside a running knobd or `knob run`, and on a store nothing runs: experiments run with `knob run` \
            are shown too. Ctrl-C stops it.
            """)

    @Option(help: ArgumentHelp("The port on 127.0.0.1 (default: a free one).", valueName: "n")) var port: Int?
    @OptionGroup var homeOptions: HomeOptions

    func validate() throws {
        if let port, !(1...65535).contains(port) { throw ValidationError("--port takes 1 to 65535, found \(port)") }
    }

    func run() async throws {
        try await reportingErrors {
            let home = homeOptions.knobHome
            _ = try home.openExistingStore()  // a missing store is said here, as other commands say it
            let knobd = ((currentExecutablePath() as NSString).deletingLastPathComponent as NSString).appendingPathComponent("knobd")
            guard FileManager.default.isExecutableFile(atPath: knobd) else {
                printError("knob dashboard runs knobd, which is not beside knob (\(knobd)); build it with `swift build`")
                throw ExitCode(1)
            }
            let port = try port ?? Self.freePort()
            let token = HexToken.random(byteCount: 24)
            // The token reaches knobd in a private file, read once at its start and removed once it serves.
            let folder = NSTemporaryDirectory() + "knob-dashboard-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            let tokenFile = "\(folder)/token"
            guard FileManager.default.createFile(atPath: tokenFile, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw CocoaError(.fileWriteUnknown)
            }
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let server = Process()
            server.executableURL = URL(fileURLWithPath: knobd)
            server.arguments = ["--read-only", "--home", home.path, "--listen", "127.0.0.1:\(port)", "--token-file", tokenFile, "--log-level", "warning"]
            try server.run()
            let url = "http://127.0.0.1:\(port)"
            var ready = false
            for _ in 0..<100 where server.isRunning {
                if Self.answers(port: port) {
                    ready = true
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            try? FileManager.default.removeItem(atPath: folder)
            guard ready else {
                if server.isRunning { server.terminate() }
                printError("the dashboard did not start on \(url) (is the port taken? --port picks another)")
                throw ExitCode(1)
            }
            FileHandle.standardOutput.write(Data("knob dashboard for \(home.path), read-only: \(url)/?token=\(token)\nCtrl-C stops it.\n".utf8))
            // Ctrl-C reaches knobd too (same process group); a SIGTERM to this process is passed on.
            let forward = DispatchSource.makeSignalSource(signal: SIGTERM)
            signal(SIGTERM, SIG_IGN)
            forward.setEventHandler { server.terminate() }
            forward.resume()
            while server.isRunning { try? await Task.sleep(for: .milliseconds(200)) }
        }
    }

    /// A port nothing listens on now, as the kernel picks one.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(fd) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw CocoaError(.fileWriteUnknown) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// 127.0.0.1:port as a socket address.
    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(port.bigEndian)
        return address
    }

    /// Whether something accepts connections on 127.0.0.1:port.
    static func answers(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: UInt16(port))
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
