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

    public init(_ status: HTTPResponse.Status, code: String, _ message: String, problems: [Problem]? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems
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
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The API error for an error of knob's, or `nil` for one that is not knob's (a 500).
    static func from(_ error: any Error) -> APIError? {
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
            case .needsCommand, .specChanged, .experimentFinished: return APIError(.unprocessableContent, code: "InvalidSpec", error.description)
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

/// Turns every error into the API's JSON error; an error that is not knob's is logged and becomes a 500.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            if let apiError = APIError.from(error) { throw apiError }
            logger.error("\(request.method) \(request.uri.path) failed: \(error)")
            throw APIError(.internalServerError, code: "Internal", "internal error: \(error)")
        }
    }
}

/// Requires `Authorization: Bearer <token>` (compared in constant time).
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        guard header.hasPrefix(prefix), constantTimeEqual(Array(header.dropFirst(prefix.count).utf8), Array(token.utf8)) else {
            throw APIError(.unauthorized, code: "Unauthorized", "missing or wrong bearer token: send Authorization: Bearer <token from --token-file>")
        }
        return try await next(request, context)
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
