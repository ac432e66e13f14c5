import Foundation
import Knob
import Testing

/// The experiment the output tests read: three grid trials (one fails) whose scores are numbers a
/// YAML writer could shorten (0.0005543999816845725) or leave in exponent form (1e-05), and a
/// command whose arguments are strings that YAML would read as something else when unquoted.
enum Golden {
    static let trickyStrings = [
        "yes", "No", "null", "~", "1e3", "0755", "2024-01-01", " leading space", "trailing space ", "a: b", "#hash", "x #y",
        "- dash", "'single", "\"double", "@at", "tab\there", "é ü 日本", "two\nlines\n", "{braces}", "[list]", "key:", "*star",
        "!bang", "%pct", "|pipe", ">gt", "?q", "-", ".5", "+1", ".inf", "<<", "=", "back\\slash", "bell\u{07}",
    ]

    static var spec: String {
        let object: [String: Any] = [
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": "Experiment",
            "metadata": ["name": "golden"],
            "spec": [
                "objective": ["type": "maximize", "objectiveMetricName": "score", "additionalMetricNames": ["loss"]],
                "algorithm": ["algorithmName": "grid"],
                "maxTrialCount": 3,
                "parallelTrialCount": 1,
                "parameters": [["name": "lr", "parameterType": "categorical",
                                "feasibleSpace": ["list": ["0.0005543999816845725", "0.1", "1e-05"]]]],
                "trialTemplate": ["command": [
                    "/bin/sh", "-c",
                    "if [ \"$0\" = 0.1 ]; then echo \"ValueError: lr $0 is too large\" >&2; exit 1; fi\necho \"score=$0 loss=0.8599\"",
                    "${trialParameters.lr}",
                ] + trickyStrings],
            ],
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    static let zeta = """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata: {name: zeta}
        spec:
          objective: {type: minimize, objectiveMetricName: loss}
          algorithm: {algorithmName: random, algorithmSettings: [{name: random_state, value: "7"}]}
          maxTrialCount: 1
          parallelTrialCount: 1
          parameters:
            - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
          trialTemplate:
            command: [/bin/echo, "loss=0.25", "x=${trialParameters.x}"]
        """

    /// A folder whose `home` holds `golden` and, created after it, `zeta`, both ended.
    static let folder = Task<String, any Error> {
        let dir = makeTemporaryDirectory("knob-golden")
        try write(spec, to: "\(dir)/golden.json")
        try write(zeta, to: "\(dir)/zeta.yaml")
        for file in ["golden.json", "zeta.yaml"] {
            let run = try await knob(["run", "-f", "\(dir)/\(file)", "--home", "\(dir)/home"])
            guard run.status == 0 else { throw GoldenError.setup("knob run -f \(file): \(run.stdout)\(run.stderr)") }
        }
        return dir
    }

    enum GoldenError: Error {
        case setup(String)
    }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden").path

    /// Compares `output` with the golden file `name`; with KNOB_UPDATE_GOLDEN=1 in the environment,
    /// writes it instead (review the diff before committing it).
    static func check(_ output: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = "\(directory)/\(name)"
        if ProcessInfo.processInfo.environment["KNOB_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try output.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        let expected = try? String(contentsOfFile: path, encoding: .utf8)
        #expect(expected == output, "\(name) differs from \(path) (KNOB_UPDATE_GOLDEN=1 rewrites it):\n\(output)",
                sourceLocation: sourceLocation)
    }

    /// `text` without what changes from run to run: the folder, times, process ids, and the
    /// table columns that show ages and durations.
    static func normalized(_ text: String, folder: String) -> String {
        var text = text.replacingOccurrences(of: folder, with: "<dir>")
        text = text.replacingOccurrences(of: #"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z"#, with: "<time>", options: .regularExpression)
        // Process ids and start ticks, in the runner's handle and in events that print it.
        text = text.replacingOccurrences(of: #"("?(pid|pgid|started|supervisor|supervisorStarted)"? ?: )"\d+""#, with: "$1\"<n>\"", options: .regularExpression)
        text = text.replacingOccurrences(of: #"\b(pid|pgid|started|supervisor|supervisorStarted)=\d+"#, with: "$1=<n>", options: .regularExpression)
        // A path that a table cut short, before the folder could be replaced.
        text = text.replacingOccurrences(of: #"status=\S+"#, with: "status=<path>", options: .regularExpression)
        // CSV: the duration after the start and end times.
        text = text.replacingOccurrences(of: #"(<time>|),(<time>|),\d+,"#, with: "$1,$2,~,", options: .regularExpression)
        for column in ["AGE", "DURATION"] { text = masking(column, in: text) }
        return text
    }

    /// A table with the cells of `column` replaced by `~` (the column keeps its place and width).
    static func masking(_ column: String, in table: String) -> String {
        var lines = table.components(separatedBy: "\n")
        guard let header = lines.first, let range = header.range(of: "  \(column)") ?? (header.hasPrefix(column + " ") ? header.range(of: column) : nil) else {
            return table
        }
        let start = header.distance(from: header.startIndex, to: range.lowerBound) + (header[range].hasPrefix(" ") ? 2 : 0)
        let afterHeader = header.index(header.startIndex, offsetBy: start + column.count)
        let width = column.count + header[afterHeader...].prefix { $0 == " " }.count - (afterHeader == header.endIndex ? 0 : 2)
        for index in lines.indices.dropFirst() where lines[index].count > start {
            var characters = Array(lines[index])
            let end = min(characters.count, start + width)
            let cell = String(characters[start..<end]).trimmingCharacters(in: .whitespaces)
            guard !cell.isEmpty else { continue }
            characters.replaceSubrange(start..<end, with: Array("~".padding(toLength: end - start, withPad: " ", startingAt: 0)))
            lines[index] = String(characters).replacingOccurrences(of: #" +$"#, with: "", options: .regularExpression)
        }
        return lines.joined(separator: "\n")
    }

    /// The commands whose output is pinned, by golden file name.
    static let commands: [(file: String, arguments: [String])] = [
        ("list.table.txt", ["list"]),
        ("list.wide.txt", ["list", "-o", "wide"]),
        ("list.csv", ["list", "-o", "csv"]),
        ("list.json", ["list", "-o", "json"]),
        ("list.yaml", ["list", "-o", "yaml"]),
        ("list.sort-by-name.txt", ["list", "--sort-by", "name"]),
        ("trials.table.txt", ["trials", "golden"]),
        ("trials.wide.txt", ["trials", "golden", "-o", "wide"]),
        ("trials.csv", ["trials", "golden", "-o", "csv"]),
        ("trials.json", ["trials", "golden", "-o", "json"]),
        ("trials.yaml", ["trials", "golden", "-o", "yaml"]),
        ("trials.sort-by-score.txt", ["trials", "golden", "-o", "wide", "--sort-by", "score"]),
        ("get.table.txt", ["get", "golden"]),
        ("get.json", ["get", "golden", "-o", "json"]),
        ("get.yaml", ["get", "golden", "-o", "yaml"]),
        ("best.json", ["best", "golden"]),
        ("best.yaml", ["best", "golden", "-o", "yaml"]),
        ("best.env.txt", ["best", "golden", "-o", "env"]),
        ("best.args.txt", ["best", "golden", "-o", "args"]),
    ]

    /// Each pinned command's normalized output.
    static func outputs(home: String, folder: String) async throws -> [String: String] {
        var outputs: [String: String] = [:]
        for (file, arguments) in commands {
            let result = try await knob(arguments + ["--home", home])
            #expect(result.status == 0, "knob \(arguments.joined(separator: " ")): \(result.stderr)")
            outputs[file] = normalized(result.stdout, folder: folder)
        }
        return outputs
    }
}

@Suite(.serialized) struct OutputFormatTests {
    @Test func everyFormatIsPinnedAndTheSameWithAndWithoutKnobd() async throws {
        let folder = try await Golden.folder.value
        let home = "\(folder)/home"
        let fromStore = try await Golden.outputs(home: home, folder: folder)
        let daemon = try await DaemonProcess.start(home: home, log: "\(folder)/knobd.log")
        defer { kill(daemon.pid, SIGKILL) }
        let fromDaemon = try await Golden.outputs(home: home, folder: folder)
        for (file, _) in Golden.commands {
            let output = try #require(fromStore[file])
            #expect(fromDaemon[file] == output, "\(file): knobd's answer differs from the store's:\n\(fromDaemon[file] ?? "")\n---\n\(output)")
            try Golden.check(output, file)
        }
        // Gone before the next test of this suite reads the same home (a dying knobd may still take its socket's connections).
        kill(daemon.pid, SIGKILL)
        _ = await daemon.process.wait()
    }

    @Test func numbersAndTimesAreTheSameInJSONAndYAML() async throws {
        let folder = try await Golden.folder.value
        let home = "\(folder)/home"
        let trialsJSON = try await knob(["trials", "golden", "--home", home, "-o", "json"]).stdout
        let trialsYAML = try await knob(["trials", "golden", "--home", home, "-o", "yaml"]).stdout
        // Every digit, as the trial reported it, in both.
        #expect(trialsJSON.contains(#""objectiveValue" : 0.0005543999816845725"#), "\(trialsJSON)")
        #expect(trialsYAML.contains("objectiveValue: 0.0005543999816845725"), "\(trialsYAML)")
        struct Objective: Decodable { var objectiveValue: Double? }
        let values = try JSONDecoder().decode([Objective].self, from: Data(trialsJSON.utf8)).compactMap(\.objectiveValue)
        #expect(values.contains(0.0005543999816845725), "\(values)")
        #expect(trialsYAML.contains("latest: 0.8599") && !trialsYAML.contains("e-1") && !trialsYAML.contains("e-4"), "\(trialsYAML)")
        // An exponent keeps its digits and reads as a number in YAML 1.1 too.
        #expect(trialsJSON.contains(#""objectiveValue" : 1e-05"#) && trialsYAML.contains("objectiveValue: 1.0e-05"))

        // Whatever the command, a YAML reader gets from -o yaml exactly what a JSON reader gets from -o json.
        let dir = makeTemporaryDirectory()
        try write(Golden.zeta.replacingOccurrences(of: "name: zeta", with: "name: again"), to: "\(dir)/again.yaml")
        try write("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nmetadata: {name: Bad_Name}\nspec: {}\n", to: "\(dir)/bad.yaml")
        let pairs: [[String]] = [
            ["list"], ["trials", "golden"], ["get", "golden"], ["get", "zeta"], ["best", "golden"], ["describe", "golden", "golden-2"], ["metrics", "golden", "golden-1"],
            ["validate", "-f", "\(folder)/golden.json"], ["validate", "-f", "\(dir)/bad.yaml"],
        ]
        for arguments in pairs {
            let place = arguments[0] == "validate" ? [] : ["--home", home]
            let asJSON = try await knob(arguments + place + ["-o", "json"])
            let asYAML = try await knob(arguments + place + ["-o", "yaml"])
            #expect(asJSON.status == asYAML.status && !asJSON.stdout.isEmpty, "\(arguments): \(asJSON.stderr)")
            try expectSameData(asJSON.stdout, asYAML.stdout, "\(arguments)")
        }
        let ran = try await knob(["run", "-f", "\(dir)/again.yaml", "--home", "\(dir)/home", "-o", "yaml"])
        #expect(ran.status == 0 && ran.stderr.contains("experiment again succeeded"), "progress goes to stderr: \(ran.stderr)")
        let best = try await knob(["best", "again", "--home", "\(dir)/home", "-o", "yaml"])
        #expect(ran.stdout == best.stdout && ran.stdout.hasPrefix("bestTrialName: again-1\n"), "run -o yaml ends with what best -o yaml prints")
        try expectSameData(try await knob(["best", "again", "--home", "\(dir)/home", "-o", "json"]).stdout, ran.stdout, "run -o yaml")
    }

    /// Reads `jsonText` with Python's json and `yamlText` with PyYAML (a YAML 1.1 reader, the
    /// strictest about what it takes for a number or a string) and expects the same data.
    func expectSameData(_ jsonText: String, _ yamlText: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let dir = makeTemporaryDirectory()
        try write(jsonText, to: "\(dir)/a.json")
        try write(yamlText, to: "\(dir)/a.yaml")
        let script = "import json, sys, yaml\na = json.load(open(sys.argv[1]))\nb = yaml.safe_load(open(sys.argv[2]))\n"
            + "print('same' if a == b and type(a) == type(b) else 'differ:\\n' + repr(a) + '\\n' + repr(b))"
        let result = try runToEndSync("/usr/bin/env", ["python3", "-c", script, "\(dir)/a.json", "\(dir)/a.yaml"])
        #expect(result == "same\n", "\(what): \(result)\n\(yamlText)", sourceLocation: sourceLocation)
    }

    func runToEndSync(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test func getPrintsKatibsExperimentObject() async throws {
        let folder = try await Golden.folder.value
        let object = try #require(try json(try await knob(["get", "golden", "--home", "\(folder)/home", "-o", "json"]).stdout) as? [String: Any])
        #expect(object["apiVersion"] as? String == "kubeflow.org/v1beta1" && object["kind"] as? String == "Experiment")
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(metadata["name"] as? String == "golden" && metadata["creationTimestamp"] is String)
        // The spec as given, down to the command's strings.
        let given = try #require(try json(Golden.spec) as? [String: Any])
        #expect(NSDictionary(dictionary: try #require(object["spec"] as? [String: Any])).isEqual(to: try #require(given["spec"] as? [String: Any])))
        // Katib's v1beta1 ExperimentStatus fields (pkg/apis/controller/experiments/v1beta1), and nothing else.
        let katibStatusFields: Set<String> = [
            "startTime", "completionTime", "lastReconcileTime", "conditions", "currentOptimalTrial", "runningTrialList", "pendingTrialList",
            "failedTrialList", "succeededTrialList", "killedTrialList", "earlyStoppedTrialList", "metricsUnavailableTrialList", "trials",
            "trialsSucceeded", "trialsFailed", "trialsKilled", "trialsPending", "trialsRunning", "trialsEarlyStopped", "trialMetricsUnavailable",
        ]
        let status = try #require(object["status"] as? [String: Any])
        #expect(Set(status.keys).isSubset(of: katibStatusFields), "not Katib's: \(Set(status.keys).subtracting(katibStatusFields))")
        #expect(status["trials"] as? Int == 3 && status["trialsSucceeded"] as? Int == 2 && status["trialsFailed"] as? Int == 1)
        #expect(status["trialsRunning"] as? Int == 0 && status["startTime"] is String && status["completionTime"] is String)
        let conditions = try #require(status["conditions"] as? [[String: Any]])
        #expect(conditions.map { "\($0["type"] ?? "") \($0["status"] ?? "")" } == ["Created True", "Running False", "Succeeded True"])
        #expect(conditions.allSatisfy { Set($0.keys) == ["type", "status", "reason", "message", "lastUpdateTime", "lastTransitionTime"] })
        #expect(conditions.last?["reason"] as? String == "ExperimentMaxTrialsReached", "\(conditions)")
        let optimal = try #require(status["currentOptimalTrial"] as? [String: Any])
        #expect(optimal["bestTrialName"] as? String == "golden-1")
        #expect(optimal["parameterAssignments"] as? [[String: String]] == [["name": "lr", "value": "0.0005543999816845725"]])
        let metrics = try #require((optimal["observation"] as? [String: Any])?["metrics"] as? [[String: String]])
        #expect(metrics.contains(["name": "score", "min": "0.0005543999816845725", "max": "0.0005543999816845725", "latest": "0.0005543999816845725"]))
        // knob's own fields under their own key.
        let view = try #require(object["knob"] as? [String: Any])
        #expect(view["status"] as? String == "Succeeded" && view["reason"] as? String == "MaxTrialsReached")
        // A list's items are what get prints.
        let list = try #require(try json(try await knob(["list", "--home", "\(folder)/home", "-o", "json"]).stdout) as? [String: Any])
        #expect(list["kind"] as? String == "ExperimentList")
        let items = try #require(list["items"] as? [[String: Any]])
        #expect(items.compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String } == ["zeta", "golden"])
        #expect(NSDictionary(dictionary: items[1].filter { $0.key != "knob" }).isEqual(to: object.filter { $0.key != "knob" }))
    }

    @Test func sortByOrdersEveryFormatAndNamesTheFields() async throws {
        let folder = try await Golden.folder.value
        let home = "\(folder)/home"
        let byScore = try #require(try json(try await knob(["trials", "golden", "--home", home, "-o", "json", "--sort-by", "score"]).stdout) as? [[String: Any]])
        // Ascending, trials without the objective last.
        #expect(byScore.compactMap { $0["name"] as? String } == ["golden-3", "golden-1", "golden-2"])
        let byState = try await knob(["trials", "golden", "--home", home, "--sort-by", "STATE"])
        #expect(byState.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ")[0] } == ["golden-2", "golden-1", "golden-3"])
        let unknown = try await knob(["trials", "golden", "--home", home, "--sort-by", "scroe"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("--sort-by scroe: no such field; did you mean score?") && unknown.stderr.contains("fields: trial, state, score, lr"),
                "\(unknown.stderr)")
    }

    @Test func bestTakesDashOAndStillItsOldFormatOption() async throws {
        let folder = try await Golden.folder.value
        let home = "\(folder)/home"
        for format in ["json", "env", "args"] {
            let new = try await knob(["best", "golden", "--home", home, "-o", format])
            let old = try await knob(["best", "golden", "--home", home, "--format", format])
            #expect(new.status == 0 && new.stdout == old.stdout && !new.stdout.isEmpty, "\(format): \(new.stderr)")
        }
        let help = try await knob(["best", "--help"])
        #expect(help.stdout.contains("-o, --output") && !help.stdout.contains("--format"), "\(help.stdout)")
        let both = try await knob(["best", "golden", "--home", home, "-o", "yaml", "--format", "json"])
        #expect(both.status == 2 && both.stderr.contains("disagree"), "\(both.stderr)")
    }

    @Test func validateSpeaksYAML() async throws {
        let folder = try await Golden.folder.value
        let valid = try await knob(["validate", "-f", "\(folder)/golden.json", "-o", "yaml"])
        #expect(valid.status == 0 && valid.stdout == "problems: []\nvalid: true\n", "\(valid.stdout)")
    }

    @Test func aMistypedExperimentNameGetsTheNearestNameWithAndWithoutKnobd() async throws {
        let folder = try await Golden.folder.value
        let home = "\(folder)/home"
        var results = [try await knob(["trials", "goldne", "--home", home]), try await knob(["get", "zetta", "--home", home])]
        let daemon = try await DaemonProcess.start(home: home, log: "\(folder)/knobd-typo.log")
        defer { kill(daemon.pid, SIGKILL) }
        results += [try await knob(["trials", "goldne", "--home", home]), try await knob(["get", "zetta", "--home", home])]
        for (index, result) in results.enumerated() {
            let expected = index % 2 == 0 ? "error: no experiment named goldne; did you mean golden? knob list shows the experiments\n"
                : "error: no experiment named zetta; did you mean zeta? knob list shows the experiments\n"
            #expect(result.status == 1 && result.stderr.hasSuffix(expected), "\(result.stderr)")
        }
        for command in [["stop", "goldne"], ["edit", "goldne", "--max-trials", "5"], ["resume", "goldne"], ["logs", "goldne", "goldne-1"]] {
            let result = try await knob(command + ["--home", home])
            #expect(result.status == 1 && result.stderr.contains("did you mean golden?"), "\(command): \(result.stderr)")
        }
        let far = try await knob(["get", "mnist", "--home", home])
        #expect(far.stderr.hasSuffix("error: no experiment named mnist; knob list shows the experiments\n"), "\(far.stderr)")
    }
}

@Suite struct OptionTypoTests {
    @Test func aMistypedOptionOrANegativeBudgetSaysWhatIsWrong() async throws {
        let typo = try await knob(["edit", "mnist", "--max-trial", "20"])
        #expect(typo.status == 2 && typo.stderr.hasPrefix("error: Unknown option '--max-trial'. Did you mean '--max-trials'?"), "\(typo.stderr)")
        let negative = try await knob(["edit", "mnist", "--max-trials", "-3"])
        #expect(negative.status == 2 && negative.stderr.hasPrefix("error: --max-trials takes a whole number of at least 1, found -3\n"), "\(negative.stderr)")
        #expect(!negative.stderr.contains("Missing value"))
        let events = try await knob(["get", "mnist", "--events", "-1"])
        #expect(events.status == 2 && events.stderr.contains("--events takes 0 or more, found -1"), "\(events.stderr)")
    }
}

/// The README's command table says what `--help` says: a row for every command, and in it every
/// option the command takes (those every command shares are described once, above the table).
@Suite struct ReadmeCommandTableTests {
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../README.md").standardized.path
    /// Described once for all commands (the connection and home), or in their own section (Kubernetes).
    static let shared: Set<String> = ["--home", "--socket", "--server", "--token-file", "--version", "--help"]
    static let documentedElsewhere: Set<String> = ["--kubeconfig", "--context", "--namespace", "--pod-pending-timeout", "--artifacts-claim",
                                                     "--metrics-collector-image", "--tfevent-collector-image"]

    @Test func everyCommandAndOptionInHelpIsInTheTable() async throws {
        let text = try String(contentsOfFile: Self.readme, encoding: .utf8)
        // The first cell of each row, by the commands it names (`knob stop NAME` / `knob resume NAME`).
        var rows: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| `knob ") {
            // Cells are split at unescaped bars; `json\|yaml` stays in its cell.
            let cell = String(line.replacingOccurrences(of: "\\|", with: "¦").dropFirst(2).prefix { $0 != "|" }).replacingOccurrences(of: "¦", with: "|")
            for match in cell.matches(of: /`knob ([a-z-]+)/) { rows[String(match.1)] = cell }
        }
        let help = try await knob(["--help"]).stdout
        let section = try #require(help.components(separatedBy: "SUBCOMMANDS:").last)
        let commands = section.split(separator: "\n").compactMap { line in
            line.hasPrefix("  ") && !line.hasPrefix("   ") ? line.split(separator: " ").first.map(String.init) : nil
        }.filter { $0 != "See" }
        #expect(commands.count > 10, "\(help)")
        for command in commands {
            guard let row = rows[command] else {
                Issue.record("the README's command table has no row for knob \(command)")
                continue
            }
            let usage = try await knob([command, "--help"]).stdout
            let options = Set(usage.matches(of: /(?m)^\s+(?:-[a-z], )?(--[a-z][a-z-]*)/).map { String($0.1) })
            for option in options.subtracting(Self.shared) {
                if Self.documentedElsewhere.contains(option) {
                    #expect(text.contains("`\(option)"), "the README does not mention \(option) (knob \(command))")
                    continue
                }
                let short = option == "--output" ? "-o" : option == "--file" ? "-f" : option == "--follow" ? "-f" : option
                #expect(row.contains(option) || row.contains(short + " ") || row.contains(short + "]") || row.contains("[" + short),
                        "the README's row for knob \(command) does not show \(option): \(row)")
            }
        }
    }
}
