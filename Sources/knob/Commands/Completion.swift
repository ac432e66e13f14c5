import ArgumentParser
import Foundation
import Knob
import Store

struct Completion: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the shell completion script for bash, zsh or fish.",
        discussion: """
            Commands, options, experiment and trial names (read from the store in --home, else $KNOB_HOME or ~/.knob) and \
            spec files complete. Load it in the current shell with: source <(knob completion bash); install it with, e.g., \
            knob completion bash > ~/.local/share/bash-completion/completions/knob, \
            knob completion zsh > \"${fpath[1]}/_knob\", knob completion fish > ~/.config/fish/completions/knob.fish.
            """)

    enum Shell: String, ExpressibleByArgument, CaseIterable {
        case bash, zsh, fish
    }

    @Argument(help: "The shell: bash, zsh or fish.") var shell: Shell

    func run() throws {
        print(KnobCommand.completionScript(for: CompletionShell(rawValue: shell.rawValue)!), terminator: "")
    }
}

extension CompletionKind {
    /// The names of the experiments in the store.
    static var experimentName: CompletionKind {
        .custom { words, index, prefix in await NameCompletion(words: words, index: index).experiments(prefix) }
    }

    /// The names of the trials of the experiment named earlier on the command line.
    static var trialName: CompletionKind {
        .custom { words, index, prefix in await NameCompletion(words: words, index: index).trials(prefix) }
    }
}

/// Names for a shell's completion, read from the store the command line points at. Quick and
/// silent: anything that goes wrong (no store, a locked one) completes nothing.
struct NameCompletion {
    var words: [String]
    var index: Int

    /// The options of knob's commands that take a value (whose value is no positional argument).
    /// `-f` is not one of them: where a command has a positional argument, `-f` is `--follow`.
    static let optionsWithValues: Set<String> = [
        "--home", "--socket", "--server", "--token-file", "-o", "--output", "--metric", "--lines", "--events", "--interval",
        "--timeout", "--sort-by", "--max-trials", "--parallel", "--max-failed",
    ]

    /// The home: `--home DIR` (or `--home=DIR`) on the command line, else the default.
    var home: KnobHome {
        for (position, word) in words.enumerated() where position != index {
            if word.hasPrefix("--home=") { return KnobHome(Self.unquoted(String(word.dropFirst("--home=".count)))) }
            if word == "--home", words.indices.contains(position + 1), position + 1 != index { return KnobHome(Self.unquoted(words[position + 1])) }
        }
        return KnobHome(nil)
    }

    /// The positional words before the one completed, after the command's name and subcommand.
    var positionals: [String] {
        var result: [String] = []
        var skipNext = false
        for word in words.prefix(index).dropFirst(2) {
            if skipNext {
                skipNext = false
            } else if word.hasPrefix("-") {
                skipNext = Self.optionsWithValues.contains(word)
            } else {
                result.append(Self.unquoted(word))
            }
        }
        return result
    }

    func experiments(_ prefix: String) async -> [String] {
        guard let store = try? home.openExistingStore(), let experiments = try? await store.experiments() else { return [] }
        return experiments.map(\.name).filter { $0.hasPrefix(prefix) }
    }

    func trials(_ prefix: String) async -> [String] {
        guard let experiment = positionals.first, let store = try? home.openExistingStore(),
              let record = try? await store.experiment(named: experiment), let id = record.id,
              let trials = try? await store.trials(of: id) else { return [] }
        return trials.map(\.name).filter { $0.hasPrefix(prefix) }
    }

    /// A word as the shell passes it, without the quotes around it.
    static func unquoted(_ word: String) -> String {
        guard word.count >= 2, let first = word.first, first == "'" || first == "\"", word.last == first else { return word }
        return String(word.dropFirst().dropLast())
    }
}
