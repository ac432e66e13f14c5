import Foundation
import Testing
@testable import KnobAlgorithms
@testable import Knob

/// Specs written to make knob trap, hang or run out of memory: each is refused quickly, with a
/// problem that names its path and line.
@Suite struct HostileSpecTests {
    /// A local experiment with `parameters` (YAML list items, indented for `spec.parameters`).
    func spec(_ parameters: String, algorithm: String = "random", settings: String = "", spec extra: String = "",
              template: String = "") -> String {
        """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata:
          name: hostile
        spec:
          objective:
            type: minimize
            objectiveMetricName: loss
          algorithm:
            algorithmName: \(algorithm)
        \(settings)
        \(extra)
          parameters:
        \(parameters)
          trialTemplate:
        \(template)
            command: [/bin/echo, "loss=${trialParameters.x}"]
        """
    }

    func double(_ feasibleSpace: String) -> String {
        "    - name: x\n      parameterType: double\n      feasibleSpace: \(feasibleSpace)"
    }

    func int(_ feasibleSpace: String) -> String {
        "    - name: x\n      parameterType: int\n      feasibleSpace: \(feasibleSpace)"
    }

    /// The problems of `text`, each with its line (which must be known).
    func problems(of text: String, limits: SpecLimits = .default) -> [SpecProblem] {
        do {
            _ = try ExperimentSpec.parse(text, limits: limits)
            Issue.record("the spec was accepted")
            return []
        } catch {
            for problem in error.problems { #expect(problem.line != nil, "no line: \(problem)") }
            return error.problems
        }
    }

    @Test func intBoundsBeyondTwoToThe53AreRefusedNotTrapped() {
        let found = problems(of: spec(int(#"{min: "0", max: "9223372036854775807"}"#)))
        #expect(found.map(\.path) == ["spec.parameters[0].feasibleSpace.max"])
        #expect(found[0].message.contains("out of range") && found[0].message.contains("9007199254740992"))
        #expect(problems(of: spec(int(#"{min: "-1e300", max: "1"}"#))).map(\.path) == ["spec.parameters[0].feasibleSpace.min"])
        #expect(problems(of: spec(int(#"{min: 0, max: 10, step: 1e100}"#))).map(\.path) == ["spec.parameters[0].feasibleSpace.step"])
        // The largest accepted bounds make a space every algorithm can sample.
        let wide = try? ExperimentSpec.parse(spec(int("{min: -9007199254740992, max: 9007199254740992}")))
        let suggestions = try? RandomSuggester(context: SuggesterContext(space: wide!.searchSpace, settings: [:], seed: 1))
            .suggest(count: 5, history: History([]))
        #expect(suggestions?.allSatisfy { wide!.searchSpace.contains($0.assignment) } == true)
    }

    @Test func aStepTooSmallToCountIsRefused() {
        let found = problems(of: spec(double(#"{min: "0", max: "1", step: "1e-300"}"#)))
        #expect(found.map(\.path) == ["spec.parameters[0].feasibleSpace.step"])
        #expect(found[0].message.contains("more than 2^53"))
        #expect(found[0].line == 16)
        #expect(problems(of: spec(double(#"{min: -1e308, max: 1e308}"#)))[0].message.contains("wider than a double can hold"))
    }

    @Test func timeoutsAndCountsHaveDocumentedLimits() {
        let timeout = problems(of: spec(double("{min: 0, max: 1}"), template: "    timeoutSeconds: 1e16"))
        #expect(timeout.map(\.path) == ["spec.trialTemplate.timeoutSeconds"])
        let parallel = problems(of: spec(double("{min: 0, max: 1}"), spec: "  parallelTrialCount: 1000000000"))
        #expect(parallel.map(\.path) == ["spec.parallelTrialCount"])
        #expect(parallel[0].message.contains("1...64") && parallel[0].message.contains("--max-parallel"))
        var raised = SpecLimits()
        raised.maxParallelTrialCount = 500
        #expect((try? ExperimentSpec.parse(spec(double("{min: 0, max: 1}"), spec: "  parallelTrialCount: 500"), limits: raised)) != nil)
        #expect(problems(of: spec(double("{min: 0, max: 1}"), spec: "  maxTrialCount: 1e12")).map(\.path) == ["spec.maxTrialCount"])
    }

    @Test func aGridIsCountedNotEnumerated() {
        let clock = ContinuousClock()
        let start = clock.now
        let found = problems(of: spec(int(#"{min: "0", max: "100000000000000"}"#), algorithm: "grid"))
        #expect(found.map(\.path) == ["spec.parameters"])
        #expect(found[0].message.contains("100000000000001 points"))
        let product = problems(of: spec(int("{min: 0, max: 99999}") + "\n    - name: y\n      parameterType: int\n      feasibleSpace: {min: 0, max: 99999}",
                                        algorithm: "grid", template: "    env: {Y: \"${trialParameters.y}\"}"))
        #expect(product.first?.message.contains("10000000000 points") == true)
        #expect(problems(of: spec(double(#"{min: "0", max: "10000", step: "1e-12"}"#), algorithm: "grid")).map(\.path)
                == ["spec.parameters[0].feasibleSpace.step"])
        // A large grid within the limit costs nothing to set up: its points are read one at a time.
        let large = try? ExperimentSpec.parse(spec(int("{min: 0, max: 9999999}"), algorithm: "grid"))
        let grid = try? GridSuggester(context: SuggesterContext(space: large!.searchSpace, settings: [:], seed: 0))
        #expect(grid?.size == 10_000_000)
        #expect((try? grid?.suggest(count: 3, history: History([])))?.map { $0.assignment["x"] } == [.int(0), .int(1), .int(2)])
        #expect(clock.now - start < .seconds(5))
    }

    @Test func aliasesThatExpandBeyondTheBudgetAreRefused() {
        var text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for (name, previous) in zip("bcdefghi", "abcdefgh") {
            text += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ", ") + "]\n"
        }
        let found = problems(of: text)
        #expect(found.count == 1 && found[0].message.contains("more than 200000 nodes"))
        // A small alias is a valid YAML tool and still works.
        #expect((try? SpecValue.parse("x: &v [1, 2]\ny: *v")).map { $0["y"] == $0["x"] } == true)
    }

    @Test func longListsAreCheckedInLinearTime() {
        let many = (0..<9_999).map { "\"v\($0)\"" }.joined(separator: ", ")
        let clock = ContinuousClock()
        let start = clock.now
        let parsed = try? ExperimentSpec.parse(spec("    - name: x\n      parameterType: categorical\n      feasibleSpace: {list: [\(many), \"v5\"]}"))
        #expect(parsed == nil)
        #expect(clock.now - start < .seconds(5))
        let tooMany = (0..<40_000).map { "\"v\($0)\"" }.joined(separator: ", ")
        let found = problems(of: spec("    - name: x\n      parameterType: categorical\n      feasibleSpace: {list: [\(tooMany)]}"))
        #expect(found.map(\.path) == ["spec.parameters[0].feasibleSpace.list"] && found[0].message.contains("at most 10000"))
    }

    @Test func numbersAreDecimalNotHexNorBooleansNorInfinity() {
        for text in ["0x10", "true", ".inf", "nan", "1e", "--1", "1.2.3", "0b1"] {
            let found = problems(of: spec(double("{min: \"\(text)\", max: 100}")))
            #expect(found.map(\.path) == ["spec.parameters[0].feasibleSpace.min"], "\(text)")
        }
        for text in ["1", "-2.5", ".5", "1e-3", "+3", "2E+2"] {
            #expect((try? ExperimentSpec.parse(spec(double("{min: \"\(text)\", max: 1000}")))) != nil, "\(text)")
        }
    }

    @Test func flowStyleYAMLAndAByteOrderMarkAreRead() throws {
        let flow = "{apiVersion: kubeflow.org/v1beta1, kind: Experiment, metadata: {name: flow}, spec: {objective: {type: minimize, "
            + "objectiveMetricName: loss}, algorithm: {algorithmName: random}, parameters: [{name: x, parameterType: double, "
            + "feasibleSpace: {min: '0', max: '1'}}], trialTemplate: {command: [/bin/echo, 'loss=${trialParameters.x}']}}}"
        #expect(try ExperimentSpec.parse(flow).name == "flow")
        let yaml = spec(double("{min: 0, max: 1}"))
        #expect(try ExperimentSpec.parse("\u{FEFF}" + yaml) == ExperimentSpec.parse(yaml))
    }

    @Test func messagesNameNoSwiftTypes() {
        for text in ["? [a, b]\n: 1\n", "? {a: 1}\n: 1\n", "[1, 2", "{\"a\": }", "spec: *undefined"] {
            guard case .failure(let error) = Result(catching: { try ExperimentSpec.parse(text) }) else {
                Issue.record("accepted: \(text)")
                continue
            }
            for problem in (error as? SpecError)?.problems ?? [] {
                #expect(!problem.message.contains("Yams") && !problem.message.contains("Node") && !problem.message.contains("Error("),
                        "\(problem.message)")
            }
        }
    }

    @Test func everyProblemHasItsLine() {
        // Problems that have no node of their own (a missing field, an unused parameter, the grid's
        // size, a suggester's complaint) take the line of the nearest node on their path.
        let text = spec(double("{min: 0, max: 1}") + "\n    - name: unused\n      parameterType: int\n      feasibleSpace: {min: 1, max: 3}",
                        algorithm: "grid")
        let found = problems(of: text)
        #expect(found.map(\.path) == ["spec.parameters[1]"] && found.first?.line == 17, "\(found)")
        let missing = problems(of: "apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nmetadata: {name: x}\nspec:\n  parallelTrialCount: 2\n")
        #expect(missing.contains { $0.path == "spec.objective" && $0.line == 5 }, "\(missing)")
        let grid = problems(of: spec(int("{min: 0, max: 99999999}"), algorithm: "grid"))
        #expect(grid.map(\.path) == ["spec.parameters"] && grid.first?.line == 14, "\(grid)")
    }

    @Test func hostileListsOfProblemsAreCut() {
        let keys = (0..<1_000).map { "  unknown\($0): 1" }.joined(separator: "\n")
        let found = problems(of: "apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nmetadata: {name: x}\nspec:\n\(keys)\n")
        #expect(found.count == SpecReader.maxProblems + 1)
        #expect(found.last?.message.contains("more problems") == true)
    }
}
