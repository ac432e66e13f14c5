import Foundation

public typealias JSONObject = [String: Any]

/// The calls knob makes to the Kubernetes API: JSON requests (retried with backoff where
/// Kubernetes says an error is transient, `Retry-After` honoured) and streams (watches, followed
/// logs) handed over line by line.
public struct KubeClient: Sendable {
    public let access: ClusterAccess
    /// How many times a transient error (429, 5xx, no answer) is retried before it is reported.
    public var retries = 6
    /// The first pause between retries; it doubles each time, up to 5 s.
    public var backoff: Double = 0.25

    public init(_ access: ClusterAccess) {
        self.access = access
    }

    /// Sends a request and returns the decoded object; an error status throws `KubeAPIError` with the server's message.
    @discardableResult
    public func request(_ method: String, _ path: String, query: [(String, String)] = [], body: JSONObject? = nil,
                        contentType: String = "application/json", timeout: Double = 30) async throws -> JSONObject {
        let payload = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        var attempt = 0
        var refreshed = false
        while true {
            do {
                let response = try await send(method, path, query: query, body: payload, contentType: contentType, timeout: timeout,
                                              onLine: nil, cancel: nil)
                guard !response.body.isEmpty else { return [:] }
                guard let object = try? JSONSerialization.jsonObject(with: response.body) as? JSONObject else {
                    throw KubeAPIError(status: response.status, reason: "", message: "\(method) \(path) answered something other than a JSON object")
                }
                return object
            } catch let error as KubeAPIError where error.status == 401 && !refreshed && access.canRefreshCredentials {
                // An expired token: get a new one (from the plugin or the file) and try once more.
                access.refreshCredentials()
                refreshed = true
            } catch let error as KubeAPIError where error.isTransient && attempt < retries {
                let pause = error.retryAfter.map { min($0, 30) } ?? min(5, backoff * pow(2, Double(attempt))) * Double.random(in: 0.8...1.2)
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int(pause * 1000)))
            }
        }
    }

    /// A streamed GET (a watch, a followed log): each line goes to `onLine` as it arrives, until
    /// the server ends the stream or `cancel` is set. Not retried: the caller resumes where it was.
    /// Returns whether the stream came to its end (false when it was cut, or cancelled).
    @discardableResult
    public func stream(_ path: String, query: [(String, String)], cancel: CancelFlag = CancelFlag(),
                       onLine: @escaping @Sendable (Data) -> Void) async throws -> Bool {
        try await withTaskCancellationHandler {
            try await send("GET", path, query: query, body: nil, contentType: "application/json", timeout: 0, onLine: onLine, cancel: cancel).complete
        } onCancel: {
            cancel.cancel()
        }
    }

    private func send(_ method: String, _ path: String, query: [(String, String)], body: Data?, contentType: String, timeout: Double,
                      onLine: (@Sendable (Data) -> Void)?, cancel: CancelFlag?) async throws -> KubeTransfer.Response {
        let url = access.server + path + (query.isEmpty ? "" : "?" + query.map { "\($0)=\(Self.escape($1))" }.joined(separator: "&"))
        let access = self.access
        let response = try await KubeTransfer.perform {
            KubeTransfer(cluster: access, credentials: try access.credentials(), method: method, url: url, body: body,
                         contentType: contentType, timeout: timeout, onLine: onLine, cancel: cancel)
        }
        guard response.status >= 400 else { return response }
        var error = KubeAPIError(status: response.status, reason: "", message: String(decoding: response.body.prefix(500), as: UTF8.self))
        if let status = try? JSONSerialization.jsonObject(with: response.body) as? JSONObject {
            error.reason = status["reason"] as? String ?? ""
            error.message = status["message"] as? String ?? error.message
        }
        error.retryAfter = response.headers["retry-after"].flatMap(Double.init)
        if response.status == 401 {
            error.message += " (the credentials of \(access.origin) were refused)"
        }
        throw error
    }

    static func escape(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}

/// API paths of the objects knob creates.
enum KubePath {
    static func pods(_ namespace: String) -> String { "/api/v1/namespaces/\(namespace)/pods" }
    static func pod(_ namespace: String, _ name: String) -> String { "\(pods(namespace))/\(name)" }
    static func log(_ namespace: String, _ name: String) -> String { "\(pod(namespace, name))/log" }
}
