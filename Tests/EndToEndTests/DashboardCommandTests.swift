import Foundation
import Knob
import KnobClient
import Testing

@Suite struct DashboardCommandTests {
    /// `knob dashboard` over a store filled by `knob run`, with no knobd: the URL it prints opens the
    /// pages, the token is required, and nothing can be changed through it.
    @Test func knobDashboardServesAStoreReadOnlyWithAFreshToken() async throws {
        let dir = makeTemporaryDirectory()
        try write(fastTrainer, to: "\(dir)/trainer.py")
        try write(tinySpec(name: "shown"), to: "\(dir)/spec.yaml")
        let home = "\(dir)/home"
        #expect(try await knob(["run", "-f", "\(dir)/spec.yaml", "--home", home]).status == 0)

        let dashboard = try await LocalRunner().start(TrialLaunch(
            experimentName: "tests", trialName: "dashboard", argv: [knobExecutable, "dashboard", "--home", home],
            workingDirectory: dir, environment: [:], logPath: "\(dir)/dashboard.log", trialDirectory: "\(dir)/dashboard"))
        defer { Task { await dashboard.terminate(grace: .seconds(5)) } }
        var printed = ""
        for _ in 0..<200 where !printed.contains("?token=") {
            try await Task.sleep(for: .milliseconds(50))
            printed = (try? String(contentsOfFile: "\(dir)/dashboard.log", encoding: .utf8)) ?? ""
        }
        let url = try #require(printed.split(separator: " ").first { $0.hasPrefix("http://127.0.0.1:") }).split(separator: "\n")[0]
        let base = String(url.prefix { $0 != "?" }).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let token = String(url.split(separator: "token=").last ?? "")
        #expect(token.count == 48)

        let client = KnobClient(.tcp(baseURL: base, token: token))
        let list = try await client.request("GET", "/v1/experiments")
        #expect(list.text.contains("\"name\":\"shown\""))
        let page = try await KnobClient(.tcp(baseURL: base, token: nil)).request("GET", "/?token=\(token)")
        #expect(page.status == 200 && page.text.contains("<html"))
        let (unauthorized, _) = await answer(KnobClient(.tcp(baseURL: base, token: nil)), "GET", "/v1/experiments")
        #expect(unauthorized == 401)
        let (refused, text) = await answer(client, "POST", "/v1/experiments/shown/stop")
        #expect(refused == 405 && text.contains("ReadOnly"), "\(text)")
        // No socket and no lock were taken: a knobd can start on the same home meanwhile.
        #expect(!FileManager.default.fileExists(atPath: "\(home)/knobd.sock"))
        let daemon = try await DaemonProcess.start(home: home)
        kill(daemon.pid, SIGTERM)
    }
}
