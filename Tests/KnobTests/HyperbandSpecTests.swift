import Foundation
import Testing
@testable import KnobAlgorithms
@testable import Knob

/// Hyperband in a spec: Katib's settings, their problems with path and line, and the algorithms
/// knob refuses by name.
@Suite struct HyperbandSpecTests {
    /// A Katib-style hyperband experiment on Kubernetes, its budget parameter's range narrower than
    /// the budgets hyperband gives (Katib sets the resource whatever its range).
    static func spec(settings: String = """
              - name: resource_name
                value: num-epochs
              - name: eta
                value: "2"
              - name: r_l
                value: "2"
        """, algorithm: String = "hyperband") -> String {
        """
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata:
          name: hyperband
        spec:
          parallelTrialCount: 2
          maxTrialCount: 2
          objective:
            type: maximize
            objectiveMetricName: Validation-accuracy
          algorithm:
            algorithmName: \(algorithm)
            algorithmSettings:
        \(settings)
          parameters:
            - name: lr
              parameterType: double
              feasibleSpace: {min: "0.01", max: "0.03"}
            - name: optimizer
              parameterType: categorical
              feasibleSpace: {list: [sgd, adam, ftrl]}
            - name: num-epochs
              parameterType: int
              feasibleSpace: {min: "1", max: "1"}
          trialTemplate:
            primaryContainerName: training-container
            trialParameters:
              - {name: learningRate, reference: lr}
              - {name: optimizer, reference: optimizer}
              - {name: numberEpochs, reference: num-epochs}
            trialSpec:
              apiVersion: batch/v1
              kind: Job
              spec:
                template:
                  spec:
                    containers:
                      - name: training-container
                        image: docker.io/example/mnist:latest
                        command:
                          - python3
                          - /opt/mnist.py
                          - --lr=${trialParameters.learningRate}
                          - --optimizer=${trialParameters.optimizer}
                          - --num-epochs=${trialParameters.numberEpochs}
                    restartPolicy: Never
        """
    }

    static func problems(_ text: String) -> [SpecProblem] {
        do {
            _ = try ExperimentSpec.parse(text)
            return []
        } catch {
            return error.problems
        }
    }

    /// The 1-based line of the first line of `text` that contains `marker`.
    static func line(of marker: String, in text: String) -> Int? {
        text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(marker) }.map { $0 + 1 }
    }

    @Test func aKatibHyperbandSpecParses() throws {
        let spec = try ExperimentSpec.parse(Self.spec())
        #expect(spec.algorithm.algorithmName == "hyperband")
        #expect(spec.algorithm.settingsByName == ["resource_name": "num-epochs", "eta": "2", "r_l": "2"])
    }

    @Test func theHyperbandMNISTExampleParsesAndRunsItsWholeScheduleWithinMaxTrialCount() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../examples/mnist/experiment-hyperband.yaml")
        let spec = try ExperimentSpec.parse(try String(contentsOf: url, encoding: .utf8))
        #expect(spec.algorithm.algorithmName == "hyperband")
        let suggester = try HyperbandSuggester(context: SuggesterContext(space: spec.searchSpace, settings: spec.algorithm.settingsByName, seed: 1))
        #expect(suggester.resource.name == "epochs")
        #expect(spec.maxTrialCount == suggester.schedule.trialCount)
    }

    @Test func aBadSettingIsReportedAtItsPathAndLine() {
        let text = Self.spec(settings: """
              - name: resource_name
                value: num-epochs
              - name: r_l
                value: "1"
        """)
        let found = Self.problems(text)
        #expect(found.map(\.path) == ["spec.algorithm.algorithmSettings[1]"], "\(found)")
        #expect(found.first?.message == "r_l: \"1\" is not a number in 3...1000000000 (at least eta, 3: below it hyperband has a single trial)")
        #expect(found.first?.line != nil && found.first?.line == Self.line(of: "name: r_l", in: text), "\(found)")
    }

    @Test func aResourceThatIsNoParameterIsReportedWithTheCandidates() {
        let text = Self.spec(settings: """
              - name: resource_name
                value: epochs
              - name: r_l
                value: "9"
        """)
        let found = Self.problems(text)
        #expect(found.map(\.path) == ["spec.algorithm.algorithmSettings[0]"], "\(found)")
        #expect(found.first?.message == "resource_name: \"epochs\" is not a parameter of the spec; one of lr, num-epochs")
        #expect(found.first?.line == Self.line(of: "name: resource_name", in: text))
    }

    @Test func aMissingRequiredSettingIsReported() {
        let text = Self.spec(settings: """
              - name: resource_name
                value: num-epochs
        """)
        let found = Self.problems(text)
        #expect(found.map(\.path) == ["spec.algorithm.algorithmSettings"], "\(found)")
        #expect(found.first?.message.hasPrefix("r_l: hyperband needs it") == true)
        // The list's line: where its first setting is.
        #expect(found.first?.line == Self.line(of: "name: resource_name", in: text))
    }

    @Test(arguments: [("pbt", "population-based training (pbt) is not supported"),
                      ("enas", "neural architecture search (enas, darts) is not supported"),
                      ("darts", "neural architecture search (enas, darts) is not supported")])
    func nasAndPBTAreRefusedByName(_ name: String, _ reason: String) {
        let text = Self.spec(settings: "      - {name: population_size, value: \"4\"}", algorithm: name)
        let found = Self.problems(text)
        #expect(found.map(\.path) == ["spec.algorithm.algorithmName"], "\(found)")
        #expect(found.first?.message.hasPrefix("algorithm \"\(name)\": \(reason)") == true, "\(found)")
        #expect(found.first?.message.contains("known: ") == true && found.first?.message.contains("hyperband") == true)
        #expect(found.first?.line == Self.line(of: "algorithmName:", in: text))
    }

    @Test func anUnknownAlgorithmStillGetsADidYouMean() {
        let found = Self.problems(Self.spec(algorithm: "hyperbnd"))
        #expect(found.first?.message.hasPrefix("unknown algorithm \"hyperbnd\"; did you mean hyperband? known: ") == true, "\(found)")
    }
}
