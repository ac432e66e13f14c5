import Foundation
import KnobClient
import Testing

/// `knob importance` on a finished experiment whose objective is one parameter (`score` is x) and whose
/// other metric is another (`other` is y), from the store and through knobd.
enum Importances {
    static let spec = """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: importance}
        spec:
          objective: {type: maximize, objectiveMetricName: score, additionalMetricNames: [other]}
          algorithm: {algorithmName: random}
          maxTrialCount: 16
          parallelTrialCount: 2
          parameters:
            - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
            - {name: y, parameterType: double, feasibleSpace: {min: "0.001", max: "1", distribution: logUniform}}
            - {name: kind, parameterType: categorical, feasibleSpace: {list: [a, b, c]}}
          trialTemplate:
            command: [/bin/sh, -c, "echo score=${trialParameters.x} other=${trialParameters.y} kind=${trialParameters.kind}"]
        """

    /// An experiment with a single trial: nothing to compare.
    static let single = spec.replacingOccurrences(of: "name: importance}", with: "name: single}")
        .replacingOccurrences(of: "maxTrialCount: 16", with: "maxTrialCount: 1")
        .replacingOccurrences(of: "parallelTrialCount: 2", with: "parallelTrialCount: 1")

    /// A folder whose `home` holds both experiments, ended.
    static let folder = Task<String, any Error> {
        let dir = makeTemporaryDirectory("knob-importance")
        for (file, text) in [("importance.yaml", spec), ("single.yaml", single)] {
            try write(text, to: "\(dir)/\(file)")
            let run = try await knob(["run", "-f", "\(dir)/\(file)", "--home", "\(dir)/home"])
            guard run.status == 0 else { throw Golden.GoldenError.setup("knob run -f \(file): \(run.stdout)\(run.stderr)") }
        }
        return dir
    }

    struct Report: Decodable, Equatable {
        struct Item: Decodable, Equatable {
            var name: String
            var importance: Double
        }

        var metric: String
        var evaluator: String
        var trials: Int
        var importances: [Item]
    }

    static func report(_ arguments: [String], home: String) async throws -> Report {
        let result = try await knob(["importance"] + arguments + ["-o", "json", "--home", home])
        #expect(result.status == 0, "\(result.stderr)")
        return try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
    }
}

@Suite(.serialized) struct ImportanceCommandTests {
    @Test func theParameterTheMetricFollowsComesFirst() async throws {
        let home = try await "\(Importances.folder.value)/home"
        let objective = try await Importances.report(["importance"], home: home)
        #expect(objective.metric == "score" && objective.evaluator == "fanova" && objective.trials == 16, "\(objective)")
        #expect(objective.importances.map(\.name).first == "x", "\(objective)")
        #expect(Set(objective.importances.map(\.name)) == ["x", "y", "kind"])
        #expect(abs(objective.importances.map(\.importance).reduce(0, +) - 1) < 1e-9)
        #expect(zip(objective.importances, objective.importances.dropFirst()).allSatisfy { $0.importance >= $1.importance })
        let other = try await Importances.report(["importance", "--metric", "other"], home: home)
        #expect(other.metric == "other" && other.importances.first?.name == "y", "\(other)")

        let table = try await knob(["importance", "importance", "--home", home])
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "importance: importance of each parameter to score (fANOVA over 16 completed trials)", "\(table.stdout)")
        #expect(lines.dropFirst().first?.hasPrefix("PARAMETER  IMPORTANCE") == true, "\(table.stdout)")
        let top = try #require(objective.importances.first)
        let row = try #require(lines.dropFirst(2).first).split(separator: " ").map(String.init)
        #expect(row.count == 3 && row[0] == "x" && row[1] == String(format: "%.3f", top.importance) && row[2].hasPrefix("█"), "\(table.stdout)")
        #expect(lines.count == 5, "a title, a header and a row per parameter:\n\(table.stdout)")
    }

    @Test func withFewerThanTwoTrialsTheListIsEmpty() async throws {
        let home = try await "\(Importances.folder.value)/home"
        let report = try await Importances.report(["single"], home: home)
        #expect(report.trials == 1 && report.importances.isEmpty, "\(report)")
        let text = try await knob(["importance", "single", "--home", home])
        #expect(text.stdout == "experiment single has 1 completed trial with score; importances need at least 2\n", "\(text.stdout)")
    }

    @Test func anUnknownMetricOrExperimentSaysWhatThereIs() async throws {
        let home = try await "\(Importances.folder.value)/home"
        let metric = try await knob(["importance", "importance", "--metric", "scor", "--home", home])
        #expect(metric.status == 2 && metric.stderr.hasSuffix(
            "error: --metric scor: experiment importance has no metric named scor; did you mean score? its metrics are score, other\n"), "\(metric.stderr)")
        let experiment = try await knob(["importance", "importanc", "--home", home])
        #expect(experiment.status == 1 && experiment.stderr.contains("no experiment named importanc; did you mean importance?"), "\(experiment.stderr)")
    }

    @Test func knobdAnswersWhatTheStoreGives() async throws {
        let folder = try await Importances.folder.value
        let home = "\(folder)/home"
        let commands = [["importance", "-o", "json"], ["importance", "--metric", "other", "-o", "json"], ["importance"], ["single"],
                        ["importance", "--metric", "scor"]]
        var fromStore: [CommandResult] = []
        for arguments in commands { fromStore.append(try await knob(["importance"] + arguments + ["--home", home])) }
        let daemon = try await DaemonProcess.start(home: home, log: "\(folder)/knobd.log")
        defer { kill(daemon.pid, SIGKILL) }
        for (arguments, store) in zip(commands, fromStore) {
            let answer = try await knob(["importance"] + arguments + ["--home", home])
            #expect(answer.status == store.status && answer.stdout == store.stdout, "\(arguments): knobd's answer differs:\n\(answer.stdout)\n---\n\(store.stdout)")
            // The store's path adds a note that no knobd answers.
            #expect(store.stderr.hasSuffix(answer.stderr), "\(arguments):\n\(answer.stderr)\n---\n\(store.stderr)")
        }
        // The API itself: its document is the one -o json prints, and an unknown metric is a 404.
        let body = try await daemon.client.request("GET", "/v1/experiments/importance/importances").body
        let api = try JSONDecoder().decode(Importances.Report.self, from: body)
        #expect(api == (try JSONDecoder().decode(Importances.Report.self, from: Data(fromStore[0].stdout.utf8))))
        do {
            _ = try await daemon.client.request("GET", "/v1/experiments/importance/importances?metric=nope")
            Issue.record("an unknown metric was answered")
        } catch KnobClient.ClientError.api(let status, let code, let message) {
            #expect(status == 404 && code == "NotFound" && message.hasSuffix("its metrics are score, other"), "\(status) \(code) \(message)")
        }
    }
}
