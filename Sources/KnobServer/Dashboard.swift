import Foundation
import Hummingbird
import NIOCore

/// The dashboard: three pages (the experiments, one experiment, one trial) and their script and style, embedded in
/// knobd at build time, and Chart.js, read from Debian's `libjs-chart.js` where Debian's web packages
/// put it. The pages read the API with the same credentials (the token's cookie over TCP).
struct Dashboard: Sendable {
    /// Where Debian's `libjs-chart.js` installs Chart.js.
    static let chartJSPath = "/usr/share/javascript/chart.js/chart.min.js"

    private static let assets: [String: (type: String, bytes: [UInt8])] = [
        "dashboard.js": ("text/javascript; charset=utf-8", PackageResources.dashboard_js),
        "dashboard.css": ("text/css; charset=utf-8", PackageResources.dashboard_css),
    ]

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get("/") { _, _ in Self.page(PackageResources.index_html) }
        router.get("/experiments/:name") { _, _ in Self.page(PackageResources.experiment_html) }
        router.get("/experiments/:name/trials/:trial") { _, _ in Self.page(PackageResources.trial_html) }
        router.get("/static/:file") { _, context in
            let file = try context.parameters.require("file")
            guard let asset = Self.assets[file] else {
                throw APIError(.notFound, code: "NotFound", "the dashboard has no file named \(file.prefix(60))")
            }
            return Self.answer(asset.bytes, type: asset.type)
        }
        router.get("/javascript/chart.js/chart.min.js") { _, _ in
            guard let data = FileManager.default.contents(atPath: Self.chartJSPath) else {
                throw APIError(.notFound, code: "NotFound", "\(Self.chartJSPath) is missing: the dashboard's charts need Debian's libjs-chart.js (apt-get install libjs-chart.js)")
            }
            return Self.answer(Array(data), type: "text/javascript; charset=utf-8")
        }
    }

    private static func page(_ bytes: [UInt8]) -> Response {
        var response = answer(bytes, type: "text/html; charset=utf-8")
        // The pages load only their own script, style and data.
        response.headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
        return response
    }

    private static func answer(_ bytes: [UInt8], type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
