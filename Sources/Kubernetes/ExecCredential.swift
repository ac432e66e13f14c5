import Foundation

/// A kubeconfig `exec` credential plugin (`aws eks get-token`, `gke-gcloud-auth-plugin`…): runs
/// the command, reads the `ExecCredential` it prints, and keeps the token until its
/// `expirationTimestamp`.
final class ExecCredentialPlugin: @unchecked Sendable {
    struct Issued {
        var token: String?
        var clientCertificate: Data?
        var clientKey: Data?
        var expires: Date?
    }

    let command: String
    let arguments: [String]
    let environment: [String: String]
    let apiVersion: String
    let location: String
    let installHint: String?
    /// The cluster, for plugins that ask for it (`provideClusterInfo: true`).
    let clusterInfo: [String: Any]?
    /// How long the plugin may run.
    let timeout: Double = 60
    private let lock = NSLock()
    private var cached: Issued?

    init(_ entry: [String: Any], relativeTo config: String, at location: String,
         cluster: (server: String, ca: Data?, insecure: Bool)) throws {
        guard let command = entry["command"] as? String, !command.isEmpty else {
            throw KubeConfigError("\(location) needs a command")
        }
        self.command = command.contains("/") ? ClusterAccess.resolve(command, relativeTo: config) : command
        arguments = (entry["args"] as? [Any])?.map { "\($0)" } ?? []
        var environment: [String: String] = [:]
        for (index, item) in ((entry["env"] as? [Any]) ?? []).enumerated() {
            guard let item = item as? [String: Any], let name = item["name"] as? String else {
                throw KubeConfigError("\(location).env[\(index)] needs a name and a value")
            }
            environment[name] = item["value"].map { "\($0)" } ?? ""
        }
        self.environment = environment
        apiVersion = entry["apiVersion"] as? String ?? "client.authentication.k8s.io/v1"
        self.location = location
        installHint = entry["installHint"] as? String
        if entry["provideClusterInfo"] as? Bool == true {
            var info: [String: Any] = ["server": cluster.server, "insecure-skip-tls-verify": cluster.insecure]
            if let ca = cluster.ca { info["certificate-authority-data"] = ca.base64EncodedString() }
            clusterInfo = info
        } else {
            clusterInfo = nil
        }
    }

    /// Forgets the cached credential (the server refused it).
    func forget() {
        lock.withLock { cached = nil }
    }

    /// The current credential, running the plugin when there is none or it expires within 10 s.
    func credential() throws -> Issued {
        try lock.withLock {
            if let cached, cached.expires.map({ $0.timeIntervalSinceNow > 10 }) ?? true { return cached }
            let issued = try run()
            cached = issued
            return issued
        }
    }

    private func run() throws -> Issued {
        let process = Process()
        guard let executable = Self.find(command) else {
            throw KubeConfigError("\(location): the credential plugin \(command) is not on PATH\(installHint.map { ". \($0)" } ?? "")")
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment.merging(self.environment) { _, new in new }
        var spec: [String: Any] = ["interactive": false]
        if let clusterInfo { spec["cluster"] = clusterInfo }
        let info: [String: Any] = ["apiVersion": apiVersion, "kind": "ExecCredential", "spec": spec]
        environment["KUBERNETES_EXEC_INFO"] = String(decoding: try JSONSerialization.data(withJSONObject: info, options: [.sortedKeys]), as: UTF8.self)
        process.environment = environment
        // Standard error goes to a file, so a chatty plugin cannot fill a pipe nobody reads while stdout is read.
        let errorsPath = FileManager.default.temporaryDirectory.appendingPathComponent("knob-exec-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: errorsPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errorsPath) }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: errorsPath)
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw KubeConfigError("\(location): cannot run \(command): \(error.localizedDescription)")
        }
        let timer = DispatchWorkItem { [process] in if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        timer.cancel()
        let stderr = FileManager.default.contents(atPath: errorsPath) ?? Data()
        if process.terminationReason == .uncaughtSignal {
            throw KubeConfigError("\(location): \(command) did not finish within \(Int(timeout)) s")
        }
        guard process.terminationStatus == 0 else {
            let said = String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw KubeConfigError("\(location): \(command) exited with code \(process.terminationStatus)\(said.isEmpty ? "" : ": \(said.prefix(500))")")
        }
        guard let object = try? JSONSerialization.jsonObject(with: stdout) as? [String: Any],
              let status = object["status"] as? [String: Any] else {
            throw KubeConfigError("\(location): \(command) did not print an ExecCredential with a status")
        }
        let issued = Issued(
            token: status["token"] as? String,
            clientCertificate: (status["clientCertificateData"] as? String).map { Data($0.utf8) },
            clientKey: (status["clientKeyData"] as? String).map { Data($0.utf8) },
            expires: (status["expirationTimestamp"] as? String).flatMap(parseKubeTime))
        guard issued.token != nil || (issued.clientCertificate != nil && issued.clientKey != nil) else {
            throw KubeConfigError("\(location): \(command) printed an ExecCredential with neither a token nor a client certificate and key")
        }
        return issued
    }

    private static func find(_ command: String) -> String? {
        if command.contains("/") { return FileManager.default.isExecutableFile(atPath: command) ? command : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(command)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// A Kubernetes timestamp (RFC 3339, with or without fractional seconds).
func parseKubeTime(_ text: String) -> Date? {
    KubeTime.parse(text).map { Date(timeIntervalSince1970: Double($0.seconds) + Double($0.nanoseconds) / 1e9) }
}

/// A log line's timestamp to the nanosecond, as the kubelet writes it (`2026-11-26T16:07:20.123456789Z`).
struct KubeTime: Comparable, Hashable, Sendable, Codable {
    var seconds: Int64
    var nanoseconds: Int64

    static func < (a: KubeTime, b: KubeTime) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }

    static func parse(_ text: some StringProtocol) -> KubeTime? {
        // Whole seconds through ISO 8601; the fraction by hand (Foundation keeps only milliseconds).
        var text = String(text)
        var nanoseconds: Int64 = 0
        if let dot = text.firstIndex(of: ".") {
            let digitsEnd = text[text.index(after: dot)...].firstIndex { !$0.isNumber } ?? text.endIndex
            let digits = text[text.index(after: dot)..<digitsEnd]
            let padded = (String(digits.prefix(9)) + String(repeating: "0", count: max(0, 9 - digits.count)))
            nanoseconds = Int64(padded) ?? 0
            text.removeSubrange(dot..<digitsEnd)
        }
        guard let date = try? Date(text, strategy: .iso8601) else { return nil }
        return KubeTime(seconds: Int64(date.timeIntervalSince1970.rounded()), nanoseconds: nanoseconds)
    }

    /// RFC 3339 in whole seconds, as `sinceTime` takes it.
    var sinceTimeText: String {
        Date(timeIntervalSince1970: Double(seconds)).formatted(.iso8601)
    }
}
