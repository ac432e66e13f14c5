import Foundation
import Knob
import Store

/// An experiment as Katib's `kubeflow.org/v1beta1` `Experiment` object, what `knob get -o json|yaml`
/// prints: the metadata and spec as given (with budget edits applied, as a Katib edit changes the
/// spec), and a status with Katib's fields. knob's own view of it (the API's answer for the
/// experiment) is under `knob`.
struct KatibExperiment: Encodable {
    var apiVersion = "kubeflow.org/v1beta1"
    var kind = "Experiment"
    var metadata: Metadata
    var spec: SpecValue
    var status: Status
    var knob: ExperimentView

    struct Metadata: Encodable {
        /// The metadata as given (name, and namespace when set).
        var given: [(key: String, value: SpecValue)]
        var creationTimestamp: Date

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            for (key, value) in given where key != "creationTimestamp" { try container.encode(value, forKey: Key(key)) }
            try container.encode(creationTimestamp, forKey: Key("creationTimestamp"))
        }
    }

    /// Katib's `ExperimentStatus` (without the per-state lists of trial names).
    struct Status: Encodable {
        var conditions: [Condition]
        var currentOptimalTrial: OptimalTrial
        var startTime: Date?
        var completionTime: Date?
        var trials: Int
        var trialsSucceeded: Int
        var trialsFailed: Int
        var trialsKilled: Int
        var trialsPending: Int
        var trialsRunning: Int
        var trialsEarlyStopped: Int
        var trialMetricsUnavailable: Int
    }

    /// Katib's `ExperimentCondition`.
    struct Condition: Encodable {
        var type: String
        var status: String
        var reason: String
        var message: String
        var lastUpdateTime: Date
        var lastTransitionTime: Date
    }

    init(view: ExperimentView, specText: String) throws {
        let document = try SpecValue.parse(specText)
        guard case .mapping(let metadata, _)? = document["metadata"], let spec = document["spec"] else {
            throw KatibObjectError.notAnExperiment(view.name)
        }
        self.metadata = Metadata(given: metadata, creationTimestamp: view.createdAt)
        self.spec = Self.withBudget(spec, view.budget, given: try? ExperimentSpec.parse(specText))
        self.knob = view
        let count = { (state: TrialState) in view.trials[state.rawValue] ?? 0 }
        self.status = Status(
            conditions: Self.conditions(view), currentOptimalTrial: view.currentOptimalTrial,
            startTime: view.startedAt, completionTime: view.completedAt,
            trials: view.trials.values.reduce(0, +), trialsSucceeded: count(.succeeded), trialsFailed: count(.failed),
            trialsKilled: count(.killed), trialsPending: count(.pending), trialsRunning: count(.running),
            trialsEarlyStopped: count(.earlyStopped), trialMetricsUnavailable: count(.metricsUnavailable))
    }

    /// The spec as given, with the budget as it is now where an edit changed it.
    static func withBudget(_ spec: SpecValue, _ budget: ExperimentView.Budget, given: ExperimentSpec?) -> SpecValue {
        guard case .mapping(var entries, let line) = spec, let given else { return spec }
        func set(_ key: String, _ now: Int?, was: Int?) {
            guard now != was else { return }
            let index = entries.firstIndex { $0.key == key }
            guard let now else {
                if let index { entries.remove(at: index) }
                return
            }
            let value = SpecValue.scalar(String(now), quoted: false, line: nil)
            if let index { entries[index].value = value } else { entries.append((key: key, value: value)) }
        }
        set("maxTrialCount", budget.maxTrialCount, was: given.maxTrialCount)
        set("parallelTrialCount", budget.parallelTrialCount, was: given.parallelTrialCount)
        set("maxFailedTrialCount", budget.maxFailedTrialCount, was: given.maxFailedTrialCount)
        return .mapping(entries, line: line)
    }

    /// Katib's conditions for knob's status: `Created`, then `Running` (False once it ended), then
    /// `Succeeded` or `Failed`; a stopped experiment has `Running` False with the stop's reason.
    static func conditions(_ view: ExperimentView) -> [Condition] {
        let created = view.createdAt
        var conditions = [Condition(type: "Created", status: "True", reason: "ExperimentCreated", message: "Experiment is created",
                                    lastUpdateTime: created, lastTransitionTime: created)]
        guard let started = view.startedAt else { return conditions }
        let reason = katibReason(view.reason)
        switch view.status {
        case "Succeeded", "Failed", "Stopped":
            let ended = view.completedAt ?? started
            conditions.append(Condition(type: "Running", status: "False", reason: reason, message: view.message,
                                        lastUpdateTime: ended, lastTransitionTime: ended))
            if view.status != "Stopped" {
                conditions.append(Condition(type: view.status, status: "True", reason: reason, message: view.message,
                                            lastUpdateTime: ended, lastTransitionTime: ended))
            }
        default:
            conditions.append(Condition(type: "Running", status: "True", reason: "ExperimentRunning", message: view.message,
                                        lastUpdateTime: started, lastTransitionTime: started))
        }
        return conditions
    }

    /// Katib's name for a reason: `MaxTrialsReached` → `ExperimentMaxTrialsReached`,
    /// `SearchSpaceExhausted` → `ExperimentSuggestionEndReached`.
    static func katibReason(_ reason: String) -> String {
        switch reason {
        case "SearchSpaceExhausted": return "ExperimentSuggestionEndReached"
        case _ where reason.hasPrefix("Experiment"): return reason
        default: return "Experiment" + reason
        }
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

/// Katib's `ExperimentList`, what `knob list -o json|yaml` prints.
struct KatibExperimentList: Encodable {
    var apiVersion = "kubeflow.org/v1beta1"
    var kind = "ExperimentList"
    var metadata: [String: String] = [:]
    var items: [KatibExperiment]
}

enum KatibObjectError: Error, CustomStringConvertible {
    case notAnExperiment(String)

    var description: String {
        switch self {
        case .notAnExperiment(let name): return "experiment \(name)'s stored spec has no metadata or spec mapping"
        }
    }
}
