import Foundation

/// What a trial saves for later (a model, a plot): the files under its artifacts folder,
/// `KNOB_ARTIFACTS_DIR` (`$KNOB_HOME/trials/EXPERIMENT/TRIAL/artifacts`), listed and read by
/// relative path. Only regular files inside the folder count; symbolic links are not followed.
public struct Artifacts: Sendable {
    public let directory: String

    public init(home: KnobHome, experiment: String, trial: String) {
        directory = Self.directory(trialDirectory: home.trialDirectory(experiment: experiment, trial: trial))
    }

    /// The artifacts folder of a trial whose own folder is `trialDirectory`.
    public static func directory(trialDirectory: String) -> String {
        "\(trialDirectory)/artifacts"
    }

    public struct Entry: Codable, Sendable, Hashable {
        /// Relative to the artifacts folder, `/`-separated.
        public var path: String
        public var size: Int64
    }

    /// At most this many files are listed.
    public static let maxEntries = 10_000

    /// The files, by path; none when the trial saved nothing.
    public func list() -> [Entry] {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        var entries: [Entry] = []
        while let item = walker.nextObject() as? String, entries.count < Self.maxEntries {
            var info = stat()
            guard lstat("\(directory)/\(item)", &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            entries.append(Entry(path: item, size: Int64(info.st_size)))
        }
        return entries.sorted { $0.path < $1.path }
    }

    public struct NotFound: Error, CustomStringConvertible {
        public let description: String
    }

    /// The file at `path` (relative, inside the folder, a regular file reached without links).
    public func file(_ path: String) throws(NotFound) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, !path.hasPrefix("/"), parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("\0") }) else {
            throw NotFound(description: "\"\(path)\" is not a path inside the trial's artifacts: give it as `knob artifacts` lists it")
        }
        var current = directory
        for (index, part) in parts.enumerated() {
            current += "/\(part)"
            var info = stat()
            guard lstat(current, &info) == 0 else { throw NotFound(description: "the trial has no artifact \(path)") }
            let isLast = index == parts.count - 1
            let type = info.st_mode & S_IFMT
            guard isLast ? type == S_IFREG : type == S_IFDIR else { throw NotFound(description: "the trial has no artifact \(path)") }
        }
        return current
    }
}
