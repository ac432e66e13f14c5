import ArgumentParser

@main
struct KnobCommand: AsyncParsableCommand {
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
