import ArgumentParser
import CommandSupport
import Foundation
import Knob
import KnobServer
import Kubernetes
import Logging

/// knobd: keeps experiments running, serves the HTTP/JSON API on a Unix socket (and TCP when asked).
@main
struct Knobd: SupervisedCommand {
    static let configuration = CommandConfiguration(
        commandName: "knobd",
        abstract: "The knob daemon: runs experiments and serves the HTTP/JSON API.",
        discussion: """
            Serves on <home>/knobd.sock (mode 0600). With --listen HOST:PORT it also serves TCP, and every request there
            needs "Authorization: Bearer <token>" with the token from --token-file.
            SIGTERM or SIGINT stops it; running trials go on and are followed again when knobd starts next.
            """,
        version: KnobVersion.current
    )

    @Option(help: ArgumentHelp("knob's folder (database, logs, socket); default $KNOB_HOME, else ~/.knob.", valueName: "dir"))
    var home: String?

    @Option(help: ArgumentHelp("Also serve TCP on this address, e.g. 127.0.0.1:8123.", valueName: "host:port"))
    var listen: String?

    @Option(help: ArgumentHelp("""
        A file whose first line is the bearer token for TCP clients: at least \(TokenFile.minimumLength) bytes, \
        and the file not readable or writable by others (chmod 600).
        """, valueName: "file"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("""
        The URL pods reach --listen at, e.g. http://knobd.ml.svc:8123: where Kubernetes trials of experiments \
        with a Push metrics collector send their reports (as KNOB_PUSH_URL).
        """, valueName: "url"))
    var pushURL: String?

    @Option(help: ArgumentHelp("The most trials one experiment may run at once (its parallelTrialCount, on create and edit).",
                               valueName: "n"))
    var maxParallel: Int = SpecLimits.default.maxParallelTrialCount

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Flag(help: "Only read the store: serve the API's reads and the dashboard on --listen (with --token-file), beside a knobd or a knob run that may be using it; no socket, no experiment run. `knob dashboard` starts this.")
    var readOnly = false

    @OptionGroup(title: "Kubernetes (for experiments whose trialTemplate has a trialSpec)")
    var kubernetes: KubernetesArguments

    func validate() throws {
        if let listen, Self.parseAddress(listen) == nil {
            throw ValidationError("--listen takes HOST:PORT, e.g. 127.0.0.1:8123; found \(listen)")
        }
        if let pushURL {
            guard listen != nil else {
                throw ValidationError("--push-url is the address pods reach the TCP listener at: give --listen HOST:PORT (and --token-file) too")
            }
            guard let url = URLComponents(string: pushURL), url.scheme == "http" || url.scheme == "https", url.host?.isEmpty == false else {
                throw ValidationError("--push-url takes an http:// or https:// URL with a host, e.g. http://knobd.ml.svc:8123; found \(pushURL)")
            }
        }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level: unknown level \(logLevel)") }
        if readOnly, listen == nil || tokenFile == nil { throw ValidationError("--read-only serves TCP only: give --listen HOST:PORT and --token-file") }
        guard (1...SpecLimits.default.maxTrialCount).contains(maxParallel) else {
            throw ValidationError("--max-parallel must be from 1 to \(SpecLimits.default.maxTrialCount), found \(maxParallel)")
        }
    }

    func run() async throws {
        var limits = SpecLimits.default
        limits.maxParallelTrialCount = maxParallel
        do {
            var configuration = DaemonConfiguration(
                home: KnobHome(home), listen: listen.flatMap(Self.parseAddress), token: try tokenFile.map(TokenFile.read),
                supervisor: currentExecutablePath(), logLevel: Logger.Level(rawValue: logLevel) ?? .info,
                kubernetes: kubernetes.options, podPendingTimeout: kubernetes.podPendingTimeout, limits: limits)
            configuration.readOnly = readOnly
            configuration.pushURL = pushURL
            configuration.runners = trialRunners(supervisor: currentExecutablePath(), kubernetes: kubernetes)
            try await runDaemon(configuration)
        } catch let error as DaemonError {
            FileHandle.standardError.write(Data("knobd: \(error)\n".utf8))
            throw ExitCode(1)
        } catch let error as TokenFile.Problem {
            FileHandle.standardError.write(Data("knobd: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    static func parseAddress(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        let host = String(text[..<colon])
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }
}

/// The bearer token's file, held to the rules ssh holds a private key to: others may not read or
/// change it, and the token is long enough not to be guessed.
enum TokenFile {
    static let minimumLength = 16

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// The token on the file's first line, without surrounding whitespace.
    static func read(_ path: String) throws(Problem) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw Problem(description: "--token-file \(path): cannot read it (\(String(cString: strerror(errno))))")
        }
        if info.st_mode & 0o006 != 0 {
            throw Problem(description: """
                --token-file \(path): other users can \(info.st_mode & 0o002 != 0 ? "change" : "read") it \
                (mode \(String(info.st_mode & 0o777, radix: 8))); run `chmod 600 \(path)` and start knobd again
                """)
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw Problem(description: "--token-file \(path): cannot read it as UTF-8 text")
        }
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let token = line.trimmingCharacters(in: .whitespaces)
        if token.isEmpty {
            throw Problem(description: "--token-file \(path): its first line holds no token (it is empty or only whitespace); write a token of at least \(minimumLength) characters there, e.g. `(umask 077; openssl rand -hex 32 > \(path))`")
        }
        if token.utf8.count < minimumLength {
            throw Problem(description: "--token-file \(path): the token has \(token.utf8.count) bytes, fewer than \(minimumLength); use a longer one, e.g. `(umask 077; openssl rand -hex 32 > \(path))`")
        }
        return token
    }
}
