import Foundation
import Store

/// Loading a spec file and getting its experiment ready in the store.
public enum Engine {
    /// Reads and validates the spec at `path` (`-` for standard input).
    public static func loadSpec(at path: String) throws -> (text: String, spec: ExperimentSpec) {
        let text: String
        if path == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
                throw KnobError.cannotRead(path: path, reason: "no such file")
            }
            guard !isFolder.boolValue else {
                throw KnobError.cannotRead(path: path, reason: "it is a folder; give the spec file in it, e.g. \((path as NSString).appendingPathComponent("experiment.yaml"))")
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw KnobError.cannotRead(path: path, reason: String(cString: strerror(access(path, R_OK) == 0 ? EIO : errno)))
            }
            guard let decoded = String(data: data, encoding: .utf8) else {
                throw KnobError.cannotRead(path: path, reason: "it is not UTF-8 text")
            }
            text = decoded
        }
        return (text, try ExperimentSpec.parse(text))
    }

    /// The experiment for this spec: created when new; the existing one when it exists with the
    /// same spec and has not ended (or was stopped), so that `knob run` continues it; replaced
    /// when `replace` is set.
    public static func prepare(
        specText: String, spec: ExperimentSpec, specDirectory: String, home: KnobHome, store: Store, replace: Bool
    ) async throws -> (experiment: ExperimentRecord, resumed: Bool) {
        let specJSON = String(decoding: try JSONEncoder.sorted.encode(spec), as: UTF8.self)
        if let existing = try await store.experiment(named: spec.name) {
            if replace {
                try await store.deleteExperiment(named: spec.name)
                home.removeFiles(ofExperiment: spec.name)
            } else if existing.specJSON != specJSON {
                throw KnobError.specChanged(spec.name)
            } else if existing.status == .succeeded || existing.status == .failed {
                throw KnobError.experimentFinished(name: spec.name, status: existing.status)
            } else {
                return (existing, true)
            }
        }
        return (try await store.createExperiment(try newRecord(specText: specText, spec: spec, directory: specDirectory)), false)
    }

    /// A new experiment's record: the spec as given and parsed, and its seed (the spec's
    /// `random_state`, else a random one, kept so that a restart continues the same search).
    public static func newRecord(specText: String, spec: ExperimentSpec, directory: String) throws -> ExperimentRecord {
        let seed = spec.algorithm.settingsByName["random_state"].flatMap { UInt64($0) ?? Int64($0).map { UInt64(bitPattern: $0) } }
            ?? UInt64.random(in: 0...UInt64.max)
        return ExperimentRecord(
            name: spec.name, specText: specText, specJSON: String(decoding: try JSONEncoder.sorted.encode(spec), as: UTF8.self),
            seed: seed, objectiveType: spec.objective.type.rawValue, objectiveMetricName: spec.objective.objectiveMetricName,
            directory: directory)
    }
}

extension JSONEncoder {
    /// Stable output: sorted keys.
    public static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
