import ArgumentParser
import CommandSupport
import Knob

@main
struct KnobCommand: SupervisedCommand {
    static let configuration = CommandConfiguration(
        commandName: "knob",
        abstract: "Hyperparameter search for training programs, from Katib Experiment specs.",
        discussion: """
            Experiments, trials and metrics live in SQLite under --home (default $KNOB_HOME, else ~/.knob).
            Start with: knob run -f examples/mnist/experiment.yaml (one process, no daemon), or run knobd and use
            knob create / watch / wait / best. Read commands use knobd when it answers, else the store directly.
            """,
        version: KnobVersion.current,
        subcommands: [
            Run.self, Validate.self, Create.self, List.self, Get.self, Trials.self, Describe.self, Metrics.self, Plot.self, Importance.self, Best.self, Logs.self, Watch.self, Wait.self,
            Stop.self, Resume.self, Edit.self, Delete.self, ArtifactsCommand.self, Collect.self, DashboardCommand.self, Daemon.self, Completion.self,
        ]
    )
}
