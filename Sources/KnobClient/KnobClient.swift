import CCurl
import Foundation

/// A client of knobd's HTTP/JSON API over libcurl: a Unix socket (the default) or TCP with a
/// bearer token. Each request runs on a thread of its own, so a blocking transfer never holds up
/// Swift's cooperative threads.
public struct KnobClient: Sendable {
    public enum Endpoint: Sendable, CustomStringConvertible {
        case unixSocket(String)
        case tcp(baseURL: String, token: String?)

        public var description: String {
            switch self {
            case .unixSocket(let path): return path
            case .tcp(let url, _): return url
            }
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: Data

        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public enum ClientError: Error, CustomStringConvertible, Sendable {
        /// Nothing answers at the endpoint (no daemon running).
        case unreachable(endpoint: String, reason: String)
        /// The transfer failed after connecting.
        case transport(String)
        /// The daemon answered with an error.
        case api(status: Int, code: String, message: String)

        public var description: String {
            switch self {
            case .unreachable(let endpoint, let reason): return "no knobd answers at \(endpoint) (\(reason))"
            case .transport(let message): return message
            case .api(_, _, let message): return message
            }
        }
    }

    public let endpoint: Endpoint

    public init(_ endpoint: Endpoint) {
        self.endpoint = endpoint
    }

    /// Sends a request; a status of 400 or more becomes `ClientError.api` with the server's message.
    @discardableResult
    public func request(_ method: String, _ path: String, body: Data? = nil, contentType: String = "application/json",
                        timeout: Double = 60) async throws -> Response {
        let response = try await perform(method, path, body: body, contentType: contentType, timeout: timeout, onData: nil)
        guard response.status < 400 else { throw Self.apiError(response) }
        return response
    }

    /// Sends a GET whose body arrives over time (a followed log), handing each piece to `onData`.
    public func stream(_ path: String, onData: @escaping @Sendable (Data) -> Void) async throws {
        let response = try await perform("GET", path, body: nil, contentType: "application/json", timeout: 0, onData: onData)
        guard response.status < 400 else { throw Self.apiError(response) }
    }

    static func apiError(_ response: Response) -> ClientError {
        if let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
           let error = object["error"] as? [String: Any] {
            return .api(status: response.status, code: error["code"] as? String ?? "", message: error["message"] as? String ?? response.text)
        }
        return .api(status: response.status, code: "", message: "HTTP \(response.status): \(response.text.prefix(300))")
    }

    private func perform(_ method: String, _ path: String, body: Data?, contentType: String, timeout: Double,
                         onData: (@Sendable (Data) -> Void)?) async throws -> Response {
        let endpoint = self.endpoint
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result {
                    try Transfer(endpoint: endpoint, method: method, path: path, body: body, contentType: contentType,
                                 timeout: timeout, onData: onData).run()
                })
            }
        }
    }
}

/// One libcurl easy transfer.
private final class Transfer {
    let endpoint: KnobClient.Endpoint
    let method: String
    let path: String
    let body: Data?
    let contentType: String
    let timeout: Double
    let onData: (@Sendable (Data) -> Void)?
    var received = Data()
    /// The running transfer's handle (for its status while the body arrives).
    var handle: UnsafeMutableRawPointer?

    /// Whether the body is the answer's content, to stream: an error's body is kept to be read.
    var streamsBody: Bool {
        guard onData != nil, let handle else { return false }
        var status = 0
        knob_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return status < 400
    }

    init(endpoint: KnobClient.Endpoint, method: String, path: String, body: Data?, contentType: String, timeout: Double,
         onData: (@Sendable (Data) -> Void)?) {
        self.endpoint = endpoint
        self.method = method
        self.path = path
        self.body = body
        self.contentType = contentType
        self.timeout = timeout
        self.onData = onData
    }

    func run() throws -> KnobClient.Response {
        if let failure = knob_curl_load() {
            throw KnobClient.ClientError.transport("knob speaks to knobd through libcurl, which could not be loaded (\(String(cString: failure))); install it: apt install libcurl4")
        }
        guard let handle = knob_curl_easy_init() else { throw KnobClient.ClientError.transport("libcurl could not start a transfer") }
        defer { knob_curl_easy_cleanup(handle) }
        self.handle = handle
        defer { self.handle = nil }
        var headers: UnsafeMutablePointer<curl_slist>? = nil
        defer { knob_curl_slist_free_all(headers) }
        headers = knob_curl_slist_append(headers, "Content-Type: \(contentType)")
        headers = knob_curl_slist_append(headers, "Accept: application/json")
        let url: String
        switch endpoint {
        case .unixSocket(let socketPath):
            knob_curl_setopt_string(handle, CURLOPT_UNIX_SOCKET_PATH, socketPath)
            url = "http://knobd\(path)"
        case .tcp(let baseURL, let token):
            url = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) + path : baseURL + path
            if let token { headers = knob_curl_slist_append(headers, "Authorization: Bearer \(token)") }
        }
        knob_curl_setopt_string(handle, CURLOPT_URL, url)
        knob_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)
        knob_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headers)
        knob_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        knob_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, 5000)
        if timeout > 0 { knob_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(timeout * 1000)) }
        let bodyBytes = body.map { [UInt8]($0) } ?? []
        if body != nil {
            knob_curl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, bodyBytes.count)
        }
        knob_curl_setopt_write(handle) { pointer, size, count, context in
            guard let pointer, let context else { return 0 }
            let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
            let data = Data(bytes: pointer, count: size * count)
            if transfer.streamsBody, let onData = transfer.onData { onData(data) } else { transfer.received.append(data) }
            return size * count
        }
        knob_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(self).toOpaque())
        let result: CURLcode = bodyBytes.withUnsafeBufferPointer { buffer in
            if body != nil { knob_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: buffer.baseAddress)) }
            return knob_curl_easy_perform(handle)
        }
        guard result == CURLE_OK else {
            let reason = String(cString: knob_curl_easy_strerror(result))
            if result == CURLE_COULDNT_CONNECT || result == CURLE_COULDNT_RESOLVE_HOST {
                throw KnobClient.ClientError.unreachable(endpoint: endpoint.description, reason: reason)
            }
            throw KnobClient.ClientError.transport("request to knobd at \(endpoint) failed: \(reason)")
        }
        var status = 0
        knob_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return KnobClient.Response(status: status, body: received)
    }
}
