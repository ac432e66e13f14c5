import Foundation
import Store

/// knob's folder: `knob.db`, trial logs under `logs/`, trial working folders under `trials/`,
/// what suggesters keep to resume faster under `state/` (a cache: deleting it changes nothing
/// but the time of the next suggestion).
public struct KnobHome: Sendable {
    public let path: String

    /// `--home` when given, else `$KNOB_HOME`, else `~/.knob`.
    public init(_ explicit: String? = nil) {
        if let explicit, !explicit.isEmpty {
            path = Self.absolute(explicit)
        } else if let env = ProcessInfo.processInfo.environment["KNOB_HOME"], !env.isEmpty {
            path = Self.absolute(env)
        } else {
            path = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".knob").path
        }
    }

    public var databasePath: String { "\(path)/knob.db" }

    public func logPath(experiment: String, trial: String) -> String {
        "\(path)/logs/\(experiment)/\(trial).log"
    }

    public func trialDirectory(experiment: String, trial: String) -> String {
        "\(path)/trials/\(experiment)/\(trial)"
    }

    /// The folder of an experiment's suggester state (`SuggesterStateFolder`).
    public func stateDirectory(experiment: String) -> String {
        "\(path)/state/\(experiment)"
    }

    /// Opens the store, creating the folder and database when needed.
    public func openStore() throws -> Store {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        makePrivate()
        return try Self.store(at: databasePath)
    }

    /// Opens the store only if it exists (for commands that only read).
    public func openExistingStore() throws -> Store {
        guard FileManager.default.fileExists(atPath: databasePath) else {
            throw KnobError.noStore(path)
        }
        makePrivate()
        return try Self.store(at: databasePath)
    }

    private static func store(at path: String) throws -> Store {
        do {
            return try Store(path: path)
        } catch let error as NewerStoreError {
            throw KnobError.newerStore(error)
        }
    }

    /// The home and knob's folders in it are its owner's only (0700), whatever the umask they were
    /// made under: specs, their environment values and trial logs are nobody else's to read. A home
    /// left loose by an earlier knob is tightened here.
    public func makePrivate() {
        chmod(path, 0o700)
        for folder in ["logs", "trials", "locks", "state"] { chmod("\(path)/\(folder)", 0o700) }
    }

    /// Whether a controller (knobd's, or a `knob run`) drives the experiment now: it holds the
    /// experiment's lock while it does.
    public func isDriven(experiment name: String) -> Bool {
        FileLock.isHeld(path: FileLock.experimentPath(name, home: self))
    }

    /// Removes an experiment's logs, trial folders and suggester state.
    public func removeFiles(ofExperiment name: String) {
        try? FileManager.default.removeItem(atPath: "\(path)/logs/\(name)")
        try? FileManager.default.removeItem(atPath: "\(path)/trials/\(name)")
        try? FileManager.default.removeItem(atPath: stateDirectory(experiment: name))
    }

    /// `path` made absolute against the current directory, `~` expanded.
    public static func absolute(_ path: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return expanded }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(expanded).standardizedFileURL.path
    }
}

/// Errors of the engine, with what to do about them.
public enum KnobError: Error, Sendable, CustomStringConvertible {
    case noStore(String)
    case cannotRead(path: String, reason: String)
    case needsCommand(String)
    case experimentFinished(name: String, status: ExperimentStatus)
    case specChanged(String)
    case suggester(String)
    case experimentBusy(name: String, pid: String)
    /// The store was written by a newer knob.
    case newerStore(NewerStoreError)
    /// The experiment's trials push their metrics and have no address of knob's to push them to.
    case pushUnreachable(name: String, kubernetes: Bool)
    /// What only the cluster knows refuses the spec when the experiment starts (a kind it does not serve, a missing ConfigMap).
    case refusedAtStart(name: String, message: String)

    public var description: String {
        switch self {
        case .noStore(let path):
            return "no knob store in \(path): run an experiment first (knob run -f SPEC), or point --home / KNOB_HOME at the right folder"
        case .cannotRead(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .needsCommand(let name):
            return "experiment \(name): spec.trialTemplate needs a command (the argv of a local trial, e.g. "
                + "[python3, train.py, --lr=${trialParameters.lr}]) or a trialSpec (a Kubernetes object: a Job, a PyTorchJob…)"
        case .experimentFinished(let name, let status):
            return "experiment \(name) already ran to the end (\(status.rawValue)); see it with `knob get \(name)`, "
                + "or start it again from scratch with `knob run --replace`, or choose another metadata.name"
        case .specChanged(let name):
            return "experiment \(name) exists with a different spec; run it under another metadata.name, or use --replace to discard the old one"
        case .suggester(let message):
            return "the suggestion algorithm failed: \(message)"
        case .experimentBusy(let name, let pid):
            return "experiment \(name) is being run by another knob process (pid \(pid)); stop that one first, or wait for it"
        case .newerStore(let error):
            return error.description
        case .pushUnreachable(let name, let kubernetes):
            return kubernetes
                ? "experiment \(name): its trials push their metrics (collector kind Push), and pods need an address of knobd's "
                    + "they can reach: start knobd with --listen HOST:PORT --token-file FILE --push-url http://ADDRESS:PORT "
                    + "(the address pods reach that listener at), or print the metrics to standard output (kind StdOut)"
                : "experiment \(name): its trials push their metrics (collector kind Push), and nothing serves their reports here"
        case .refusedAtStart(let name, let message):
            return "experiment \(name) cannot start: \(message)"
        }
    }
}
