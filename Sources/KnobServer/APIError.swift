import Foundation
import Hummingbird
import Knob
import Logging
import NIOCore
import Store

/// An error the API reports: an HTTP status and `{"error": {"code", "message"[, "problems"]}}`.
public struct APIError: HTTPResponseError, Sendable {
    public struct Problem: Codable, Sendable {
        var path: String
        var message: String
        var line: Int?
    }

    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var problems: [Problem]?
    /// Headers the answer carries besides its content type (e.g. `Allow` on a 405).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, _ message: String, problems: [Problem]? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems
        self.headers = headers
    }

    struct Body: Encodable {
        struct Inner: Encodable {
            var code: String
            var message: String
            var problems: [Problem]?
        }

        var error: Inner
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try APIJSON.encoder.encode(Body(error: .init(code: code, message: message, problems: problems)))
        var headers = self.headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The API error for an error of knob's, or `nil` for one that is not knob's (a 500).
    static func from(_ error: any Error) -> APIError? {
        if StoreError.isUnavailable(error) {
            return APIError(.serviceUnavailable, code: "StoreUnavailable",
                            "knobd cannot write its store (the disk is full, or failing); free space where it keeps its home, then try again")
        }
        switch error {
        case let error as APIError:
            return error
        case let error as SpecError:
            return APIError(.unprocessableContent, code: "InvalidSpec", error.description,
                            problems: error.problems.map { Problem(path: $0.path, message: $0.message, line: $0.line) })
        case let error as StoreError:
            switch error {
            case .experimentExists: return APIError(.conflict, code: "AlreadyExists", error.description)
            case .experimentNotFound, .trialNotFound: return APIError(.notFound, code: "NotFound", error.description)
            case .cannotOpen: return nil
            }
        case let error as KnobError:
            switch error {
            case .experimentBusy: return APIError(.conflict, code: "Busy", error.description)
            case .needsCommand, .specChanged, .experimentFinished, .pushUnreachable, .refusedAtStart: return APIError(.unprocessableContent, code: "InvalidSpec", error.description)
            default: return nil
            }
        case is NIOTooManyBytesError:
            return APIError(.contentTooLarge, code: "TooLarge", "the request body is larger than \(API.maxBodyBytes / 1024 / 1024) MiB")
        case let error as ManagerError:
            return APIError(.serviceUnavailable, code: "ShuttingDown", error.description)
        case let error as HTTPError:
            let code = error.status == .contentTooLarge ? "TooLarge" : error.status == .notFound ? "NotFound" : "BadRequest"
            let message = error.status == .contentTooLarge
                ? "the request body is larger than \(API.maxBodyBytes / 1024 / 1024) MiB"
                : error.body ?? error.status.reasonPhrase
            return APIError(error.status, code: code, message)
        default:
            return nil
        }
    }
}

/// Turns every error into the API's JSON error; an error that is not knob's is logged and becomes a 500
/// whose message says where the details are (never a Swift type's description).
/// A path that is served, asked with a method it is not served with, gets 405 and `Allow`.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = routes.methods(forPath: request.uri.path)
            guard !allowed.isEmpty, !allowed.contains(request.method) else { throw APIError.from(error)! }
            let list = allowed.map(\.rawValue).sorted().joined(separator: ", ")
            throw APIError(.methodNotAllowed, code: "MethodNotAllowed", "\(request.uri.path) answers \(list), not \(request.method.rawValue)",
                           headers: [.allow: list])
        } catch {
            if let apiError = APIError.from(error) { throw apiError }
            logger.error("\(request.method) \(request.uri.path) failed: \(error)")
            throw APIError(.internalServerError, code: "Internal", "internal error while serving \(request.method.rawValue) \(request.uri.path); knobd's log has the details")
        }
    }
}

/// The methods each route pattern (`/v1/experiments/{name}`, captures in braces) is served with, to
/// tell a wrong method (405) from a wrong path (404).
struct RouteTable: Sendable {
    private let patterns: [(segments: [Substring], methods: Set<HTTPRequest.Method>)]

    init<Context>(_ routes: [Router<Context>.RouteDescription]) {
        var byPath: [String: Set<HTTPRequest.Method>] = [:]
        for route in routes { byPath[route.path.description, default: []].insert(route.method) }
        patterns = byPath.map { (segments: $0.key.split(separator: "/"), methods: $0.value) }
    }

    /// The methods the path is served with; none when no route matches it.
    func methods(forPath path: String) -> Set<HTTPRequest.Method> {
        let segments = path.split(separator: "/")
        var methods: Set<HTTPRequest.Method> = []
        for pattern in patterns where pattern.segments.count == segments.count {
            if zip(pattern.segments, segments).allSatisfy({ $0.first == "{" || $0.first == ":" || $0 == $1 }) { methods.formUnion(pattern.methods) }
        }
        return methods
    }
}

/// Requires the token: `Authorization: Bearer <token>` (the scheme in any case, RFC 7235), or, for a
/// browser, the dashboard's cookie. As in Jupyter, a `GET` with `?token=<token>` is let in and sets
/// that cookie (HttpOnly, SameSite=Strict), so that the pages and the API calls they make need no header.
/// Tokens are compared in constant time.
/// A read-only server (`knob dashboard`, `knobd --read-only`): what would change the store is
/// refused with 405, before it reaches a route.
struct ReadOnlyMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get || request.method == .head else {
            throw APIError(.methodNotAllowed, code: "ReadOnly",
                           "this server only reads the store (knob dashboard): send \(request.method.rawValue) to knobd",
                           headers: [.allow: "GET"])
        }
        return try await next(request, context)
    }
}

struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The cookie a `?token=` sets; its value is the token's bytes in hex, which any token can be.
    static var cookieName: String { "knob_token" }

    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // A trial's report carries the trial's own token, which the route checks.
        if PushRoute.isPush(request) { return try await next(request, context) }
        let bytes = Array(token.utf8)
        if let credentials = Self.bearerCredentials(request.headers[.authorization] ?? ""), constantTimeEqual(Array(credentials.utf8), bytes) {
            return try await next(request, context)
        }
        if let cookie = request.cookies[Self.cookieName]?.value, constantTimeEqual(Array(cookie.utf8), Array(HexToken.text(bytes).utf8)) {
            return try await next(request, context)
        }
        if request.method == .get, let query = request.uri.queryParameters.get("token"), constantTimeEqual(Array(query.utf8), bytes) {
            var response = try await next(request, context)
            response.setCookie(Self.cookie(for: token))
            return response
        }
        throw APIError(.unauthorized, code: "Unauthorized",
                       "missing or wrong token: send Authorization: Bearer <token from --token-file>, or open /?token=<token> in a browser",
                       headers: [.wwwAuthenticate: "Bearer"])
    }

    /// The dashboard's cookie for `token`.
    static func cookie(for token: String) -> Cookie {
        // Hex digits are always a valid cookie value.
        try! Cookie.validated(name: cookieName, value: HexToken.text(token.utf8), path: "/", httpOnly: true, sameSite: .strict)
    }

    /// What follows the `Bearer` scheme (in any case) and its spaces, or `nil` for another scheme.
    static func bearerCredentials(_ header: String) -> Substring? {
        let scheme = "bearer"
        guard header.utf8.count > scheme.utf8.count, header.prefix(scheme.count).lowercased() == scheme else { return nil }
        let rest = header.dropFirst(scheme.count)
        guard rest.first == " " else { return nil }
        return rest.drop { $0 == " " }
    }
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    for i in 0..<max(a.count, b.count) {
        difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
    }
    return difference == 0
}
