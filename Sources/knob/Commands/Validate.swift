import ArgumentParser
import Foundation
import Knob

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a spec and print every problem in it, with where it is.",
        discussion: "Exit code 0 when the spec is valid, 1 when it has problems."
    )

    @Option(name: .shortAndLong, help: ArgumentHelp("The Experiment spec (YAML or JSON); - reads standard input.", valueName: "spec"))
    var file: String

    @OptionGroup var outputOptions: OutputOptions

    func run() async throws {
        do {
            let (_, spec) = try Engine.loadSpec(at: file)
            if outputOptions.output == .json {
                print(try jsonText(ValidationResult(valid: true, problems: [])))
                return
            }
            let runner = spec.trialTemplate.command != nil ? "local trials" : "Kubernetes trials (trialSpec)"
            print("\(file): valid experiment \(spec.name): \(spec.parameters.count) parameter\(spec.parameters.count == 1 ? "" : "s"), "
                  + "\(spec.algorithm.algorithmName), \(spec.objective.type.rawValue) \(spec.objective.objectiveMetricName), \(runner)")
            if spec.trialTemplate.command == nil {
                print("note: `knob run` needs trialTemplate.command (an argv list) to run trials on this machine")
            }
        } catch let error as SpecError {
            if outputOptions.output == .json {
                print(try jsonText(ValidationResult(valid: false, problems: error.problems.map {
                    .init(path: $0.path, message: $0.message, line: $0.line)
                })))
            } else {
                printError("\(file): \(error)")
            }
            throw ExitCode(1)
        } catch let error as KnobError {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    struct ValidationResult: Encodable {
        struct Problem: Encodable {
            var path: String
            var message: String
            var line: Int?
        }

        var valid: Bool
        var problems: [Problem]
    }
}
