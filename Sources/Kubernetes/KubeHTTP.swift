import CCurl
import Foundation

/// An error the Kubernetes API answered with (its `Status` object), or a transfer that failed.
public struct KubeAPIError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status; 0 when no answer came (connection refused, TLS failure, timeout).
    public var status: Int
    /// The `Status` reason (`AlreadyExists`, `NotFound`, `Expired`, `Forbidden`…).
    public var reason: String
    public var message: String
    /// Seconds the server asked us to wait (`Retry-After`).
    public var retryAfter: Double?

    public var description: String {
        status == 0 ? message : "Kubernetes API answered \(status) \(reason): \(message)"
    }

    /// Worth trying again: rate limiting, server errors, and answers that never came.
    public var isTransient: Bool {
        status == 0 || status == 429 || status >= 500
    }
}

/// Whether a transfer should stop early (the watch has seen what it waited for, the task was cancelled).
public final class CancelFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false

    public init() {}

    public func cancel() { lock.withLock { cancelled = true } }
    public var isCancelled: Bool { lock.withLock { cancelled } }
}

/// One libcurl transfer to the API server, run on a thread of its own so a blocking transfer
/// never holds up Swift's cooperative threads. A streamed body (watch events, a followed log) is
/// handed over line by line.
final class KubeTransfer {
    struct Response {
        var status: Int
        var body: Data
        var headers: [String: String]
        /// False when a streamed body was cut before its end (its last, partial line is dropped).
        var complete = true
    }

    let cluster: ClusterAccess
    let credentials: Credentials
    let method: String
    let url: String
    let body: Data?
    let contentType: String
    let timeout: Double
    let onLine: ((Data) -> Void)?
    let cancel: CancelFlag?
    private var received = Data()
    private var pending = Data()
    private var headers: [String: String] = [:]

    init(cluster: ClusterAccess, credentials: Credentials, method: String, url: String, body: Data?, contentType: String,
         timeout: Double, onLine: ((Data) -> Void)?, cancel: CancelFlag?) {
        self.cluster = cluster
        self.credentials = credentials
        self.method = method
        self.url = url
        self.body = body
        self.contentType = contentType
        self.timeout = timeout
        self.onLine = onLine
        self.cancel = cancel
    }

    static func perform(_ make: @escaping @Sendable () throws -> KubeTransfer) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try make().run() })
            }
        }
    }

    func run() throws -> Response {
        if let failure = knob_curl_load() {
            throw KubeAPIError(status: 0, reason: "", message: "knob speaks to Kubernetes through libcurl, which could not be loaded (\(String(cString: failure))); install it: apt install libcurl4")
        }
        guard let handle = knob_curl_easy_init() else {
            throw KubeAPIError(status: 0, reason: "", message: "libcurl could not start a transfer")
        }
        defer { knob_curl_easy_cleanup(handle) }
        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        defer { knob_curl_slist_free_all(headerList) }
        headerList = knob_curl_slist_append(headerList, "Accept: application/json")
        if body != nil { headerList = knob_curl_slist_append(headerList, "Content-Type: \(contentType)") }
        if let token = credentials.token { headerList = knob_curl_slist_append(headerList, "Authorization: Bearer \(token)") }
        knob_curl_setopt_string(handle, CURLOPT_URL, url)
        knob_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)
        knob_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)
        knob_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        knob_curl_setopt_long(handle, CURLOPT_HTTP_VERSION, 2)  // CURL_HTTP_VERSION_1_1: watches and logs are long chunked bodies
        knob_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, 10_000)
        if timeout > 0 { knob_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(timeout * 1000)) }
        // A stream that goes quiet for a minute is dead (watches end themselves sooner).
        knob_curl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1)
        knob_curl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, 300)
        if cluster.insecureSkipTLSVerify {
            knob_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 0)
            knob_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 0)
        } else if let ca = cluster.certificateAuthority {
            _ = ca.withUnsafeBytes { knob_curl_setopt_blob(handle, CURLOPT_CAINFO_BLOB, $0.baseAddress, $0.count) }
            // Only the cluster's CA: not also the system's (a public certificate for the server's name must not pass).
            knob_curl_setopt_string(handle, CURLOPT_CAPATH, nil)
        }
        if let proxy = cluster.proxyURL { knob_curl_setopt_string(handle, CURLOPT_PROXY, proxy) }
        if let certificate = credentials.clientCertificate, let key = credentials.clientKey {
            _ = certificate.withUnsafeBytes { knob_curl_setopt_blob(handle, CURLOPT_SSLCERT_BLOB, $0.baseAddress, $0.count) }
            knob_curl_setopt_string(handle, CURLOPT_SSLCERTTYPE, "PEM")
            _ = key.withUnsafeBytes { knob_curl_setopt_blob(handle, CURLOPT_SSLKEY_BLOB, $0.baseAddress, $0.count) }
            knob_curl_setopt_string(handle, CURLOPT_SSLKEYTYPE, "PEM")
        }
        let context = Unmanaged.passUnretained(self).toOpaque()
        knob_curl_setopt_write(handle) { pointer, size, count, context in
            guard let pointer, let context else { return 0 }
            let transfer = Unmanaged<KubeTransfer>.fromOpaque(context).takeUnretainedValue()
            transfer.receive(Data(bytes: pointer, count: size * count))
            return size * count
        }
        knob_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
        knob_curl_setopt_header(handle) { pointer, size, count, context in
            guard let pointer, let context else { return 0 }
            let transfer = Unmanaged<KubeTransfer>.fromOpaque(context).takeUnretainedValue()
            transfer.header(String(decoding: UnsafeRawBufferPointer(start: pointer, count: size * count), as: UTF8.self))
            return size * count
        }
        knob_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
        if cancel != nil {
            knob_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
            knob_curl_setopt_xferinfo(handle) { context, _, _, _, _ in
                guard let context else { return 0 }
                let transfer = Unmanaged<KubeTransfer>.fromOpaque(context).takeUnretainedValue()
                return transfer.cancel?.isCancelled == true ? 1 : 0
            }
            knob_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, context)
        }
        let bodyBytes = body.map { [UInt8]($0) } ?? []
        if body != nil { knob_curl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, bodyBytes.count) }
        let result: CURLcode = bodyBytes.withUnsafeBufferPointer { buffer in
            if body != nil { knob_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: buffer.baseAddress)) }
            return knob_curl_easy_perform(handle)
        }
        var status = 0
        knob_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        if result != CURLE_OK {
            // A stream cut after the server answered 200 (by the server, the network, or the caller) has delivered
            // its whole lines; the caller resumes from the last one.
            if status == 200, onLine != nil {
                return Response(status: status, body: received, headers: headers, complete: false)
            }
            let reason = cancel?.isCancelled == true ? "cancelled" : String(cString: knob_curl_easy_strerror(result))
            throw KubeAPIError(status: 0, reason: "", message: "\(method) \(url) failed: \(reason)")
        }
        flush()
        return Response(status: status, body: received, headers: headers)
    }

    private func header(_ line: String) {
        if line.hasPrefix("HTTP/") {
            // A new response (after a redirect or a 100 Continue): its status decides how the body is read.
            headers = [:]
            let fields = line.split(separator: " ")
            responseCode = fields.count > 1 ? Int(fields[1]) : nil
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
        headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func receive(_ data: Data) {
        // Only successful streams are split into lines; an error body is kept whole.
        guard let onLine, isSuccess else {
            received.append(data)
            return
        }
        pending.append(data)
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = pending[pending.startIndex..<newline]
            onLine(Data(line))
            pending.removeSubrange(pending.startIndex...newline)
        }
    }

    private func flush() {
        guard let onLine, isSuccess, !pending.isEmpty else { return }
        onLine(pending)
        pending.removeAll()
    }

    /// Whether the answer's status (known once headers arrived) is 2xx.
    private var isSuccess: Bool {
        guard let code = responseCode else { return true }
        return (200..<300).contains(code)
    }

    private var responseCode: Int?
}
