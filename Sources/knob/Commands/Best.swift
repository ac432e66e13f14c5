import ArgumentParser
import Foundation
import Knob
import Store

struct Best: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an experiment's best parameters, for a pipeline to use.",
        discussion: """
            -o json: Katib's currentOptimalTrial (bestTrialName, parameterAssignments, observation.metrics).
            -o yaml: the same, as YAML.
            -o env:  NAME=value lines (names upper-cased, other characters as _), for `eval` or `env $(...)`.
            -o args: --name=value arguments on one line, for a training command.
            Exit code 1 when no trial has reported the objective yet.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case json, yaml, env, args
    }

    @Argument(help: "The experiment's name.", completion: .experimentName)
    var name: String

    @Option(name: [.short, .customLong("output")], help: "json (the default), yaml, env or args.")
    var output: Format?

    /// The name this option had before every command took -o; kept so that scripts keep working.
    @Option(help: .hidden)
    var format: Format?

    @OptionGroup var homeOptions: HomeOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if let output, let format, output != format {
            throw ValidationError("-o \(output.rawValue) and --format \(format.rawValue) disagree; give -o only (--format is its old name)")
        }
    }

    func run() async throws {
        try await reportingErrors {
            let view = try await DataSource.resolve(connection, home: homeOptions.knobHome).experiment(name)
            let best = view.currentOptimalTrial
            guard !best.bestTrialName.isEmpty else {
                printError("experiment \(name) has no trial with its objective yet (\(view.status)); see `knob trials \(name)`")
                throw ExitCode(1)
            }
            switch output ?? format ?? .json {
            case .json:
                print(try jsonText(best))
            case .yaml:
                print(try yamlText(best), terminator: "")
            case .env:
                for assignment in best.parameterAssignments { print("\(envName(assignment.name))=\(shellQuoted(assignment.value))") }
            case .args:
                print(best.parameterAssignments.map { shellQuoted("--\($0.name)=\($0.value)") }.joined(separator: " "))
            }
        }
    }
}

/// `learning-rate` → `LEARNING_RATE`.
func envName(_ name: String) -> String {
    let mapped = name.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }
    let text = String(mapped)
    return text.first?.isNumber == true ? "_" + text : text
}

/// The text as one shell word (quoted only when it needs to be).
func shellQuoted(_ text: String) -> String {
    let safe = text.allSatisfy { $0.isLetter || $0.isNumber || "-_.=+,:/@%".contains($0) }
    return safe && !text.isEmpty ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
