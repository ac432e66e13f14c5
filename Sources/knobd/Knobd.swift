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
            """
    )

    @Option(help: ArgumentHelp("knob's folder (database, logs, socket); default $KNOB_HOME, else ~/.knob.", valueName: "dir"))
    var home: String?

    @Option(help: ArgumentHelp("Also serve TCP on this address, e.g. 127.0.0.1:8123.", valueName: "host:port"))
    var listen: String?

    @Option(help: ArgumentHelp("A file whose first line is the bearer token for TCP clients.", valueName: "file"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("The most trials one experiment may run at once (its parallelTrialCount, on create and edit).",
                               valueName: "n"))
    var maxParallel: Int = SpecLimits.default.maxParallelTrialCount

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @OptionGroup(title: "Kubernetes (for experiments whose trialTemplate has a trialSpec)")
    var kubernetes: KubernetesArguments

    func validate() throws {
        if let listen, Self.parseAddress(listen) == nil {
            throw ValidationError("--listen takes HOST:PORT, e.g. 127.0.0.1:8123; found \(listen)")
        }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level: unknown level \(logLevel)") }
        guard (1...SpecLimits.default.maxTrialCount).contains(maxParallel) else {
            throw ValidationError("--max-parallel must be from 1 to \(SpecLimits.default.maxTrialCount), found \(maxParallel)")
        }
    }

    func run() async throws {
        var limits = SpecLimits.default
        limits.maxParallelTrialCount = maxParallel
        var token: String?
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8),
                  let line = text.split(whereSeparator: \.isNewline).first, !line.isEmpty else {
                throw ValidationError("--token-file \(tokenFile): cannot read a token from it (the first line must hold it)")
            }
            token = String(line).trimmingCharacters(in: .whitespaces)
        }
        let configuration = DaemonConfiguration(
            home: KnobHome(home), listen: listen.flatMap(Self.parseAddress), token: token,
            supervisor: currentExecutablePath(), logLevel: Logger.Level(rawValue: logLevel) ?? .info,
            kubernetes: kubernetes.options, podPendingTimeout: kubernetes.podPendingTimeout, limits: limits)
        do {
            try await runDaemon(configuration)
        } catch let error as DaemonError {
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
