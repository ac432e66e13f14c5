import Foundation
import Yams

/// Where knob finds its cluster: flags and settings that override the kubeconfig's choices.
public struct KubernetesOptions: Sendable, Hashable {
    /// A kubeconfig file (else `$KUBECONFIG`, else `~/.kube/config`, else the in-cluster service account).
    public var kubeconfig: String?
    /// A context of the kubeconfig other than its `current-context`.
    public var context: String?
    /// The namespace for trials whose spec names none (else the context's, else `default`).
    public var namespace: String?
    /// A PersistentVolumeClaim that keeps the trials' artifacts (see `TrialManifest.artifactsMountPath`).
    public var artifactsClaim: String?
    /// The image of a File collector's sidecar: any image with a POSIX shell and `stat`, `tail`, `head`.
    public var metricsCollectorImage: String
    /// The image of a TensorFlowEvent collector's sidecar, which runs `knob collect tfevents` (examples/Dockerfile.knob).
    public var tfEventCollectorImage: String?

    /// A small public image with what a File collector's sidecar runs.
    public static let defaultMetricsCollectorImage = "docker.io/library/busybox:1.37"

    public init(kubeconfig: String? = nil, context: String? = nil, namespace: String? = nil, artifactsClaim: String? = nil,
                metricsCollectorImage: String = defaultMetricsCollectorImage, tfEventCollectorImage: String? = nil) {
        self.kubeconfig = kubeconfig
        self.context = context
        self.namespace = namespace
        self.artifactsClaim = artifactsClaim
        self.metricsCollectorImage = metricsCollectorImage
        self.tfEventCollectorImage = tfEventCollectorImage
    }
}

/// A problem with the cluster configuration, naming the file and the entry.
public struct KubeConfigError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// How to reach one cluster as one user: the API server, how to trust it, and how to log in.
public struct ClusterAccess: Sendable {
    public var server: String
    /// PEM of the certificate authorities that sign the server's certificate (`nil`: the system's).
    public var certificateAuthority: Data?
    public var insecureSkipTLSVerify: Bool
    /// The cluster's `proxy-url`.
    public var proxyURL: String?
    public var namespace: String
    /// Where this came from, for messages: `context "kind-dev" of /root/.kube/config`, `in-cluster service account`.
    public var origin: String
    var token: TokenSource?
    var clientCertificate: Data?
    var clientKey: Data?

    init(server: String, certificateAuthority: Data?, insecureSkipTLSVerify: Bool, proxyURL: String? = nil, namespace: String,
         origin: String, token: TokenSource? = nil) {
        self.server = server
        self.certificateAuthority = certificateAuthority
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.proxyURL = proxyURL
        self.namespace = namespace
        self.origin = origin
        self.token = token
    }

    /// Whether a refused token can be replaced by a fresh one (a token file, an exec plugin).
    var canRefreshCredentials: Bool {
        switch token {
        case .file?, .exec?: return true
        default: return false
        }
    }

    /// Forgets a cached credential, so that the next request gets a new one.
    func refreshCredentials() {
        if case .exec(let plugin)? = token { plugin.forget() }
    }

    /// The credentials for the next request: a token file is read again when it changed, an exec
    /// plugin runs again when its token expired.
    func credentials() throws -> Credentials {
        var credentials = Credentials(token: nil, clientCertificate: clientCertificate, clientKey: clientKey)
        switch token {
        case .literal(let value)?: credentials.token = value
        case .file(let file)?: credentials.token = try file.read()
        case .exec(let plugin)?:
            let issued = try plugin.credential()
            credentials.token = issued.token
            if let certificate = issued.clientCertificate, let key = issued.clientKey {
                credentials.clientCertificate = certificate
                credentials.clientKey = key
            }
        case nil: break
        }
        return credentials
    }
}

struct Credentials: Sendable {
    var token: String?
    var clientCertificate: Data?
    var clientKey: Data?
}

enum TokenSource: Sendable {
    case literal(String)
    case file(TokenFile)
    case exec(ExecCredentialPlugin)
}

/// A token kept in a file that may be replaced at any time (a rotated service-account token, whose
/// path is a symlink the kubelet swaps): read for every request, which costs microseconds.
struct TokenFile: Sendable {
    let path: String

    func read() throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw KubeConfigError("cannot read the token file \(path): \(readProblem(path))")
        }
    }
}

/// Why `path` cannot be read, in a few words.
func readProblem(_ path: String) -> String {
    FileManager.default.fileExists(atPath: path) ? "permission denied, or not a text file" : "no such file"
}

extension ClusterAccess {
    /// The cluster knob should use: `options.kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`,
    /// else the in-cluster service account.
    public static func resolve(_ options: KubernetesOptions, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> ClusterAccess
    {
        var files: [String] = []
        if let explicit = options.kubeconfig {
            files = [explicit]
        } else if let list = environment["KUBECONFIG"], !list.isEmpty {
            files = list.split(separator: ":").map(String.init)
        } else if let home = environment["HOME"], FileManager.default.fileExists(atPath: "\(home)/.kube/config") {
            files = ["\(home)/.kube/config"]
        }
        if !files.isEmpty { return try fromKubeconfig(files: files, options: options) }
        if environment["KUBERNETES_SERVICE_HOST"] != nil {
            var access = try inCluster(environment: environment)
            if let namespace = options.namespace { access.namespace = namespace }
            return access
        }
        throw KubeConfigError(
            "no Kubernetes cluster is configured: there is no ~/.kube/config, KUBECONFIG is not set, and this is not a pod "
                + "(KUBERNETES_SERVICE_HOST is not set). Pass --kubeconfig FILE, or set KUBECONFIG.")
    }

    /// The service account Kubernetes mounts into every pod.
    public static func inCluster(environment: [String: String] = ProcessInfo.processInfo.environment,
                                 serviceAccountDirectory: String = "/var/run/secrets/kubernetes.io/serviceaccount") throws -> ClusterAccess {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] else {
            throw KubeConfigError("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set to use the in-cluster configuration")
        }
        let tokenPath = "\(serviceAccountDirectory)/token"
        guard FileManager.default.isReadableFile(atPath: tokenPath) else {
            throw KubeConfigError("in-cluster configuration: cannot read the service-account token \(tokenPath)")
        }
        let ca = FileManager.default.contents(atPath: "\(serviceAccountDirectory)/ca.crt")
        let namespace = (try? String(contentsOfFile: "\(serviceAccountDirectory)/namespace", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return ClusterAccess(server: "https://\(hostPart):\(port)", certificateAuthority: ca, insecureSkipTLSVerify: false,
                             namespace: namespace.flatMap { $0.isEmpty ? nil : $0 } ?? "default", origin: "in-cluster service account",
                             token: .file(TokenFile(path: tokenPath)))
    }

    /// A context of one or more kubeconfig files (merged as kubectl does: the first file that
    /// names an entry wins; `current-context` from the first file that sets it).
    public static func fromKubeconfig(files: [String], options: KubernetesOptions = KubernetesOptions()) throws -> ClusterAccess {
        var clusters: [String: (file: String, entry: [String: Any])] = [:]
        var users: [String: (file: String, entry: [String: Any])] = [:]
        var contexts: [String: (file: String, entry: [String: Any])] = [:]
        var current: String?
        var read = 0
        for file in files {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                if files.count == 1 { throw KubeConfigError("cannot read the kubeconfig \(file): \(readProblem(file))") }
                continue
            }
            read += 1
            let document: Any?
            do {
                document = try Yams.load(yaml: text)
            } catch {
                throw KubeConfigError("kubeconfig \(file) is not valid YAML: \(error)")
            }
            guard let root = document as? [String: Any] else { throw KubeConfigError("kubeconfig \(file) is not a mapping") }
            func collect(_ key: String, _ field: String, into table: inout [String: (file: String, entry: [String: Any])]) throws {
                for (index, item) in ((root[key] as? [Any]) ?? []).enumerated() {
                    guard let item = item as? [String: Any], let name = item["name"] as? String else {
                        throw KubeConfigError("kubeconfig \(file): \(key)[\(index)] needs a name")
                    }
                    if table[name] == nil { table[name] = (file, (item[field] as? [String: Any]) ?? [:]) }
                }
            }
            try collect("clusters", "cluster", into: &clusters)
            try collect("users", "user", into: &users)
            try collect("contexts", "context", into: &contexts)
            if current == nil, let name = root["current-context"] as? String, !name.isEmpty { current = name }
        }
        let where_ = files.joined(separator: ":")
        guard read > 0 else { throw KubeConfigError("none of the kubeconfig files \(where_) could be read") }
        guard let contextName = options.context ?? current else {
            throw KubeConfigError("kubeconfig \(where_) sets no current-context; pass --context (one of: \(contexts.keys.sorted().joined(separator: ", ")))")
        }
        guard let context = contexts[contextName] else {
            throw KubeConfigError("kubeconfig \(where_) has no context \"\(contextName)\"; its contexts: \(contexts.keys.sorted().joined(separator: ", "))")
        }
        let clusterName = context.entry["cluster"] as? String ?? ""
        guard let cluster = clusters[clusterName] else {
            throw KubeConfigError("kubeconfig \(context.file): context \"\(contextName)\" names cluster \"\(clusterName)\", which is not in its clusters")
        }
        guard let server = cluster.entry["server"] as? String, !server.isEmpty else {
            throw KubeConfigError("kubeconfig \(cluster.file): cluster \"\(clusterName)\" has no server")
        }
        let clusterPath = "kubeconfig \(cluster.file): clusters[\(clusterName)]"
        let ca = try pem(cluster.entry, data: "certificate-authority-data", file: "certificate-authority",
                         relativeTo: cluster.file, at: clusterPath)
        let insecure = cluster.entry["insecure-skip-tls-verify"] as? Bool ?? false
        if insecure && ca != nil {
            throw KubeConfigError("\(clusterPath): insecure-skip-tls-verify cannot go with a certificate authority (as kubectl says); remove one of them")
        }
        if cluster.entry["tls-server-name"] != nil {
            throw KubeConfigError("\(clusterPath): tls-server-name is not supported; use a server address that the certificate names")
        }
        var access = ClusterAccess(
            server: server.hasSuffix("/") ? String(server.dropLast()) : server, certificateAuthority: ca,
            insecureSkipTLSVerify: insecure, proxyURL: (cluster.entry["proxy-url"] as? String).flatMap { $0.isEmpty ? nil : $0 },
            namespace: options.namespace ?? (context.entry["namespace"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? "default",
            origin: "context \"\(contextName)\" of \(context.file)")
        if let userName = context.entry["user"] as? String, !userName.isEmpty {
            guard let user = users[userName] else {
                throw KubeConfigError("kubeconfig \(context.file): context \"\(contextName)\" names user \"\(userName)\", which is not in its users")
            }
            let userPath = "kubeconfig \(user.file): users[\(userName)]"
            access.clientCertificate = try pem(user.entry, data: "client-certificate-data", file: "client-certificate",
                                               relativeTo: user.file, at: userPath)
            access.clientKey = try pem(user.entry, data: "client-key-data", file: "client-key", relativeTo: user.file, at: userPath)
            if (access.clientCertificate == nil) != (access.clientKey == nil) {
                throw KubeConfigError("\(userPath): a client certificate needs its key, and a key its certificate")
            }
            // As kubectl: a tokenFile, when set, wins over token.
            if let tokenFile = user.entry["tokenFile"] as? String, !tokenFile.isEmpty {
                access.token = .file(TokenFile(path: resolve(tokenFile, relativeTo: user.file)))
            } else if let token = user.entry["token"] as? String, !token.isEmpty {
                access.token = .literal(token)
            } else if let exec = user.entry["exec"] as? [String: Any] {
                access.token = .exec(try ExecCredentialPlugin(exec, relativeTo: user.file, at: "\(userPath).exec",
                                                              cluster: (server: access.server, ca: ca, insecure: insecure)))
            }
            for unsupported in ["auth-provider", "username"] where user.entry[unsupported] != nil {
                if access.token == nil && access.clientCertificate == nil {
                    throw KubeConfigError("\(userPath) uses \(unsupported), which knob does not support; use a token, a client certificate or an exec plugin")
                }
            }
        }
        return access
    }

    /// PEM from `<field>-data` (base64) or from the file `<field>` (relative to the kubeconfig).
    private static func pem(_ entry: [String: Any], data: String, file: String, relativeTo config: String, at path: String) throws -> Data? {
        if let encoded = entry[data] as? String, !encoded.isEmpty {
            guard let decoded = Data(base64Encoded: encoded, options: .ignoreUnknownCharacters) else {
                throw KubeConfigError("\(path).\(data) is not valid base64")
            }
            return decoded
        }
        if let name = entry[file] as? String, !name.isEmpty {
            let full = resolve(name, relativeTo: config)
            guard let contents = FileManager.default.contents(atPath: full) else {
                throw KubeConfigError("\(path).\(file): cannot read \(full)")
            }
            return contents
        }
        return nil
    }

    static func resolve(_ path: String, relativeTo config: String) -> String {
        if path.hasPrefix("/") { return path }
        if path.hasPrefix("~/"), let home = ProcessInfo.processInfo.environment["HOME"] { return home + path.dropFirst(1) }
        return ((config as NSString).deletingLastPathComponent as NSString).appendingPathComponent(path)
    }
}
