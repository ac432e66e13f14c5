import Foundation
import Testing

/// `knob metrics` and `knob plot` on an experiment whose trials report 10 steps each, with values
/// that need every digit (0.8666666666666667) or an exponent (1e-05).
enum Curves {
    static let spec = """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: curves}
        spec:
          objective: {type: maximize, objectiveMetricName: accuracy, additionalMetricNames: [loss]}
          algorithm: {algorithmName: grid}
          maxTrialCount: 6
          parallelTrialCount: 1
          parameters:
            - {name: lr, parameterType: categorical, feasibleSpace: {list: ["0.1", "0.2", "0.3", "0.15", "0.25", "0.0001"]}}
          trialTemplate:
            command:
              - python3
              - -c
              - |
                import sys
                lr = float(sys.argv[1])
                for epoch in range(1, 11):
                    print(f"2026-01-01T00:00:{epoch:02d}Z Epoch {epoch}. accuracy={1 - lr / epoch - abs(lr - 0.2)!r} - loss={lr / epoch!r}")
              - ${trialParameters.lr}
        """

    /// A folder whose `home` holds the ended experiment `curves`.
    static let folder = Task<String, any Error> {
        let dir = makeTemporaryDirectory("knob-curves")
        try write(spec, to: "\(dir)/curves.yaml")
        let run = try await knob(["run", "-f", "\(dir)/curves.yaml", "--home", "\(dir)/home"])
        guard run.status == 0 else { throw Golden.GoldenError.setup("knob run -f curves.yaml: \(run.stdout)\(run.stderr)") }
        return dir
    }

    static let commands: [(file: String, arguments: [String])] = [
        ("metrics.table.txt", ["metrics", "curves", "curves-1"]),
        ("metrics.csv", ["metrics", "curves", "curves-6", "-o", "csv"]),
        ("metrics.json", ["metrics", "curves", "curves-1", "-o", "json"]),
        ("metrics.yaml", ["metrics", "curves", "curves-1", "-o", "yaml"]),
        ("metrics.loss.txt", ["metrics", "curves", "curves-6", "--metric", "loss"]),
        ("plot.history.txt", ["plot", "curves"]),
        ("plot.curve.txt", ["plot", "curves", "curves-1"]),
        ("plot.loss.txt", ["plot", "curves", "curves-6", "--metric", "loss"]),
    ]

    static func outputs(home: String, folder: String) async throws -> [String: String] {
        var outputs: [String: String] = [:]
        for (file, arguments) in commands {
            let result = try await knob(arguments + ["--home", home])
            #expect(result.status == 0, "knob \(arguments.joined(separator: " ")): \(result.stderr)")
            outputs[file] = Golden.normalized(result.stdout, folder: folder)
        }
        return outputs
    }
}

@Suite(.serialized) struct CurveTests {
    @Test func metricsAndPlotsArePinnedAndTheSameWithAndWithoutKnobd() async throws {
        let folder = try await Curves.folder.value
        let home = "\(folder)/home"
        let fromStore = try await Curves.outputs(home: home, folder: folder)
        let daemon = try await DaemonProcess.start(home: home, log: "\(folder)/knobd.log")
        defer { kill(daemon.pid, SIGKILL) }
        let fromDaemon = try await Curves.outputs(home: home, folder: folder)
        for (file, _) in Curves.commands {
            let output = try #require(fromStore[file])
            #expect(fromDaemon[file] == output, "\(file): knobd's answer differs from the store's:\n\(fromDaemon[file] ?? "")\n---\n\(output)")
            try Golden.check(output, file)
            #expect(output.split(separator: "\n").allSatisfy { $0.count < 80 }, "\(file) is wider than 80 columns:\n\(output)")
        }
    }

    @Test func theReportsAreTheTrialsEveryDigitAndStep() async throws {
        let folder = try await Curves.folder.value
        let home = "\(folder)/home"
        struct Report: Decodable { var metric: String; var step: Int; var value: Double }
        let reports = try JSONDecoder().decode([Report].self, from: Data(try await knob(["metrics", "curves", "curves-6", "--home", home, "-o", "json"]).stdout.utf8))
        let lr = 0.0001
        #expect(reports.filter { $0.metric == "loss" }.map(\.value) == (1...10).map { lr / Double($0) })
        #expect(reports.filter { $0.metric == "accuracy" }.map(\.step) == Array(1...10))
        let csv = try await knob(["metrics", "curves", "curves-6", "--home", home, "-o", "csv"]).stdout
        #expect(csv.split(separator: "\n").last == "10,\(1 - lr / 10 - abs(lr - 0.2)),1e-05", "\(csv)")
    }

    @Test func mistakesSayWhatToDo() async throws {
        let folder = try await Curves.folder.value
        let home = "\(folder)/home"
        let metric = try await knob(["metrics", "curves", "curves-1", "--metric", "los", "--home", home])
        #expect(metric.status == 2 && metric.stderr.hasSuffix("error: --metric los: trial curves-1 reported no such metric; did you mean loss? it reported accuracy, loss\n"),
                "\(metric.stderr)")
        let trial = try await knob(["plot", "curves", "curves-9", "--home", home])
        #expect(trial.status == 1 && trial.stderr.hasSuffix("error: experiment curves has no trial named curves-9; knob trials curves lists them\n"), "\(trial.stderr)")
        let alone = try await knob(["plot", "curves", "--metric", "loss", "--home", home])
        #expect(alone.status == 2 && alone.stderr.contains("give the trial too"), "\(alone.stderr)")
    }

    @Test func inATerminalThePlotFitsTheScreen() async throws {
        let folder = try await Curves.folder.value
        let terminal = try await TerminalScreen.start([knobExecutable, "plot", "curves", "--home", "\(folder)/home"], in: folder)
        defer { Task { await terminal.close() } }
        let screen = try await terminal.waitFor("the plot") { $0.contains("[exit 0]") }
        // What comes before is the note that no knobd answers, on stderr.
        let shown = Array(screen.drop { !$0.hasPrefix("curves: ") })
        #expect(shown.first?.hasPrefix("curves: maximize accuracy by trial (6 of 6 trials") == true, "\(screen.joined(separator: "\n"))")
        #expect(shown.contains { $0.contains("• trial's accuracy   ─ best so far") }, "\(screen.joined(separator: "\n"))")
        #expect(shown.filter { $0.contains("•") }.count >= 4, "the trials' points:\n\(screen.joined(separator: "\n"))")
        let joined = try await terminal.text(joined: true).drop { !$0.hasPrefix("curves: ") }
        #expect(joined.allSatisfy { $0.count < TerminalScreen.columns }, "a line wrapped:\n\(joined.joined(separator: "\n"))")
        await terminal.close()
    }
}
