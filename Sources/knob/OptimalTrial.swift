import Foundation
import Knob
import Store

/// Katib's `currentOptimalTrial`: the best trial, its parameters and its observation, with
/// values as strings as Katib writes them.
struct OptimalTrial: Codable {
    struct Observation: Codable {
        var metrics: [Metric]
    }

    struct Metric: Codable {
        var name: String
        var min: String
        var max: String
        var latest: String
    }

    var bestTrialName: String
    var parameterAssignments: [ParameterAssignment]
    var observation: Observation

    init(_ trial: TrialRecord?) {
        bestTrialName = trial?.name ?? ""
        parameterAssignments = trial?.assignments ?? []
        observation = Observation(metrics: (trial?.observation ?? []).map {
            Metric(name: $0.name, min: numberText($0.min), max: numberText($0.max), latest: numberText($0.latest))
        })
    }
}

/// A number as JSON-friendly text that reads back as the same double.
func numberText(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(describing: value)
}
