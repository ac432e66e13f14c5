import Foundation
import KnobAlgorithms
import Store

/// Katib's `currentOptimalTrial`: the best trial, its parameters and its observation, with
/// values as strings as Katib writes them.
public struct OptimalTrial: Codable, Sendable, Hashable {
    public struct Observation: Codable, Sendable, Hashable {
        public var metrics: [Metric]
    }

    public struct Metric: Codable, Sendable, Hashable {
        public var name: String
        public var min: String
        public var max: String
        public var latest: String
    }

    public var bestTrialName: String
    public var parameterAssignments: [ParameterAssignment]
    public var observation: Observation

    public init(_ trial: TrialRecord?) {
        bestTrialName = trial?.name ?? ""
        parameterAssignments = trial?.assignments ?? []
        observation = Observation(metrics: (trial?.observation ?? []).map {
            Metric(name: $0.name, min: formatDouble($0.min), max: formatDouble($0.max), latest: formatDouble($0.latest))
        })
    }
}
