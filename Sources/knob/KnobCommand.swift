import ArgumentParser
import Knob

@main
struct KnobCommand: AsyncParsableCommand {
    static func main() async {
        // The hidden trial supervisor: not a command for people, so not in the help.
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == Supervisor.command { Supervisor.main(Array(arguments.dropFirst())) }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "knob",
        abstract: "Hyperparameter search for training programs, from Katib Experiment specs.",
        discussion: """
            Experiments, trials and metrics live in SQLite under --home (default $KNOB_HOME, else ~/.knob).
            Start with: knob run -f examples/mnist/experiment.yaml
            """,
        subcommands: [Run.self, Validate.self, List.self, Get.self, Trials.self, Best.self, Delete.self]
    )
}
