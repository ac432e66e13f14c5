import Foundation
import Testing

/// `knob completion bash|zsh|fish`, and what TAB offers in an interactive bash that loaded it.
@Suite struct CompletionTests {
    @Test func eachShellGetsItsScript() async throws {
        let expected = ["bash": "complete -o filenames -F _knob knob", "zsh": "#compdef knob", "fish": "complete -c 'knob' -f"]
        for (shell, line) in expected {
            let result = try await knob(["completion", shell])
            #expect(result.status == 0 && result.stdout.contains(line) && result.stdout.contains("---completion"), "\(shell): \(result.stderr)")
        }
        let other = try await knob(["completion", "tcsh"])
        #expect(other.status == 2 && other.stderr.contains("tcsh"), "\(other.stderr)")
    }

    @Test func tabCompletesExperimentsTrialsAndSpecFiles() async throws {
        let folder = try await Golden.folder.value
        let knobFolder = (knobExecutable as NSString).deletingLastPathComponent
        let terminal = try await TerminalScreen.start(["bash", "--norc", "--noprofile", "-i"], in: folder)
        defer { Task { await terminal.close() } }
        try await terminal.send("PS1='$ '; export PATH=\(knobFolder):$PATH KNOB_HOME=\(folder)/home; source <(knob completion bash); clear", "Enter")
        try await terminal.waitFor("the prompt") { $0.first == "$" }

        // An experiment's name, from the store.
        try await terminal.send("knob trials gol", "Tab")
        try await terminal.waitFor("the experiment's name completed") { $0.first == "$ knob trials golden" }
        // Its trials, for a command that takes one; the store in --home when given.
        try await terminal.send("C-u", "clear", "Enter", "knob logs --home \(folder)/home golden gol", "Tab")
        try await terminal.waitFor("the trials' common start") { $0.joined().hasSuffix("golden golden-") }
        try await terminal.send("Tab", "Tab")
        let trials = try await terminal.waitFor("the trials offered") { $0.contains { $0.contains("golden-1") && $0.contains("golden-3") } }
        #expect(trials.contains { $0.split(separator: " ", omittingEmptySubsequences: true) == ["golden-1", "golden-2", "golden-3"] },
                "\(trials.joined(separator: "\n"))")
        // A spec file for -f.
        try await terminal.send("C-u", "clear", "Enter", "knob run -f golden.j", "Tab")
        try await terminal.waitFor("the spec file completed") { $0.first == "$ knob run -f golden.json" }
        // No store there: nothing offered, and nothing said.
        try await terminal.send("C-u", "clear", "Enter", "knob get --home \(folder)/nowhere g", "Tab", "Tab", " done")
        let quiet = try await terminal.waitFor("the line typed on") { $0.joined().contains("/nowhere") && $0.joined().hasSuffix("g done") }
        #expect(!quiet.joined().contains(" golden") && !quiet.joined().contains("golden.json") && !quiet.joined().contains("error"), "\(quiet.joined(separator: "\n"))")
        await terminal.close()
    }
}
