import Foundation

/// How a trial of a Push experiment sends its reports: the URL and token it finds in its
/// environment (`KNOB_PUSH_URL`, `KNOB_PUSH_TOKEN`).
public struct PushCredentials: Sendable, Hashable {
    /// knob's API as the trial reaches it: `unix:///path/knobd.sock` or `http://host:port`.
    public var url: String
    public var token: String

    public init(url: String, token: String) {
        self.url = url
        self.token = token
    }

    /// The variables a trial is given, by name.
    public var environment: [String: String] {
        ["KNOB_PUSH_URL": url, "KNOB_PUSH_TOKEN": token]
    }
}

/// Where the trials of a Push experiment send their reports, by the kind of trial: a local trial
/// reaches the process that drives it on its Unix socket; a pod needs a TCP address (`--push-url`).
public struct PushEndpoints: Sendable, Hashable {
    public var local: String?
    public var kubernetes: String?

    public init(local: String? = nil, kubernetes: String? = nil) {
        self.local = local
        self.kubernetes = kubernetes
    }

    /// The URL the trials of `spec` push to; `nil` when they have none.
    public func url(for spec: ExperimentSpec) -> String? {
        spec.runsOnKubernetes ? kubernetes : local
    }

    /// Throws when `spec` pushes its metrics and its trials would have nowhere to push them.
    public func check(_ spec: ExperimentSpec) throws(KnobError) {
        guard spec.metricsCollector.kind == .push, url(for: spec) == nil else { return }
        throw .pushUnreachable(name: spec.name, kubernetes: spec.runsOnKubernetes)
    }
}

extension ExperimentSpec {
    /// Whether the trials are Kubernetes objects (a trialSpec, given or in a ConfigMap, and no command).
    public var runsOnKubernetes: Bool { trialTemplate.runsOnKubernetes }
}

/// One trial's pushed reports, in its folder: its token (`push-token`, mode 0600, made once, so that
/// a trial adopted after a restart can still push), and the JSON-lines file the API appends each
/// accepted report to (`pushed-metrics.jsonl`), which the trial's execution reads as it reads a File
/// collector's. When the trial's process has exited, the execution seals the file (`push-closed`)
/// before its last read: a report that comes later is refused, never accepted and then lost.
public struct PushChannel: Sendable {
    public static let tokenFileName = "push-token"
    public static let reportsFileName = "pushed-metrics.jsonl"
    static let closedFileName = "push-closed"
    /// The most bytes of reports one trial may push in all.
    public static let maxReportsBytes: Int64 = 64 << 20

    public let trialDirectory: String

    public init(trialDirectory: String) {
        self.trialDirectory = trialDirectory
    }

    public var tokenPath: String { "\(trialDirectory)/\(Self.tokenFileName)" }
    public var reportsPath: String { "\(trialDirectory)/\(Self.reportsFileName)" }
    var closedPath: String { "\(trialDirectory)/\(Self.closedFileName)" }

    /// Why a report was not appended.
    public enum Refusal: Error, Sendable, Equatable {
        /// The trial's process has exited: its reports were read for the last time.
        case closed
        /// The trial has pushed `maxReportsBytes` already.
        case full
        /// The file could not be written (its folder is gone, the disk is full).
        case unwritable(String)
    }

    /// The trial's token: 32 random bytes in hex, made the first time and read after.
    public func token() throws(KnobError) -> String {
        if let token = existingToken() { return token }
        do {
            try FileManager.default.createDirectory(atPath: trialDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw .cannotRead(path: trialDirectory, reason: "cannot make the trial's folder for its push token: \(error)")
        }
        let token = HexToken.random(byteCount: 32)
        // Written whole under another name, then linked to its own: the token file is never seen half
        // written, and when two makers race, both read the one that was linked first.
        let temporary = "\(tokenPath).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .cannotRead(path: temporary, reason: "cannot write the trial's push token: \(String(cString: strerror(errno)))") }
        defer { unlink(temporary) }
        let bytes = Array(token.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced else {
            throw .cannotRead(path: tokenPath, reason: "cannot write the trial's push token: \(String(cString: strerror(errno)))")
        }
        if link(temporary, tokenPath) != 0, errno != EEXIST {
            throw .cannotRead(path: tokenPath, reason: "cannot write the trial's push token: \(String(cString: strerror(errno)))")
        }
        guard let kept = existingToken() else { throw .cannotRead(path: tokenPath, reason: "the trial's push token cannot be read back") }
        return kept
    }

    /// The token, if the trial has one.
    public func existingToken() -> String? {
        guard let data = FileManager.default.contents(atPath: tokenPath), let text = String(data: data, encoding: .utf8),
              text.utf8.count == 64 else { return nil }
        return text
    }

    /// Appends one report (a JSON line, newline included) in one write, unless the trial's file is closed
    /// or full.
    public func append(_ line: [UInt8]) throws(Refusal) {
        let fd = open(reportsPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .unwritable("\(reportsPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // Held while the file is checked and written; `seal()` takes it too, so a report is either
        // in the file before its last read or refused.
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        if access(closedPath, F_OK) == 0 { throw .closed }
        var info = stat()
        if fstat(fd, &info) == 0, Int64(info.st_size) + Int64(line.count) > Self.maxReportsBytes { throw .full }
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count else {
            let reason = written < 0 ? String(cString: strerror(errno)) : "only \(written) of \(line.count) bytes were written"
            // A partial line would join the next one: it is ended, so that the reader skips it alone.
            if written > 0 { _ = write(fd, "\n", 1) }
            throw .unwritable("\(reportsPath): \(reason)")
        }
    }

    /// Refuses reports from now on (the trial's process has exited).
    func seal() {
        let fd = open(reportsPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if fd >= 0 { flock(fd, LOCK_EX) }
        let marker = open(closedPath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        if marker >= 0 { Glibc.close(marker) }
        if fd >= 0 {
            flock(fd, LOCK_UN)
            Glibc.close(fd)
        }
    }

    /// Forgets what an earlier start of the trial left (its reports, its closing), keeping its token.
    func reset() {
        unlink(reportsPath)
        unlink(closedPath)
    }
}

/// One report a trial pushes: a JSON object whose members are metric values (numbers, or numbers
/// in strings, as Katib's `report_metrics` takes them), with an optional `step` (a whole number ≥ 0)
/// and `timestamp` (RFC 3339 text or Unix seconds). Names the experiment does not record are ignored,
/// as the other collectors ignore them.
public struct PushedReport: Sendable {
    /// The most members one report may have.
    public static let maxMembers = 1000

    /// The experiment's metrics in the report, by name.
    public var values: [String: Double]
    /// The names that are no metric of the experiment.
    public var ignored: [String]
    public var step: Int?
    /// Unix seconds.
    public var timestamp: Double

    /// Why a body is no report: `malformed` (400) when it is not a JSON object, `invalid` (422) when one
    /// of its members is wrong.
    public enum Problem: Error, Sendable, Equatable {
        case malformed(String)
        case invalid(String)
    }

    private enum Member: Decodable {
        case number(Double)
        case text(String)
        case other(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if (try? container.decode(Bool.self)) != nil {
                self = .other("a boolean")
            } else if let number = try? container.decode(Double.self) {
                self = .number(number)
            } else if let text = try? container.decode(String.self) {
                self = .text(text)
            } else if container.decodeNil() {
                self = .other("null")
            } else {
                self = .other("an array or an object")
            }
        }
    }

    /// Reads a request's body; `now` stamps a report that has no `timestamp`.
    public init(json: Data, metricNames: [String], now: Date = Date()) throws(Problem) {
        let object: [String: Member]
        do {
            object = try JSONDecoder().decode([String: Member].self, from: json)
        } catch {
            throw .malformed("the body must be a JSON object of metric values, e.g. {\"accuracy\": 0.97, \"step\": 3}")
        }
        guard object.count <= Self.maxMembers else {
            throw .invalid("the report has \(object.count) members; at most \(Self.maxMembers) are taken")
        }
        func number(_ key: String, _ member: Member) throws(Problem) -> Double {
            switch member {
            case .number(let value) where value.isFinite:
                return value
            case .text(let text):
                if let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite { return value }
                throw .invalid("\(key): \"\(text.prefix(40))\" is not a finite number")
            case .number:
                throw .invalid("\(key): the value is not a finite number")
            case .other(let kind):
                throw .invalid("\(key): the value is \(kind), not a number")
            }
        }
        step = nil
        if let member = object["step"] {
            let value = try number("step", member)
            guard value >= 0, value == value.rounded(), value <= 9_007_199_254_740_992 else {
                throw .invalid("step: \(formatValue(value)) is not a whole number from 0")
            }
            step = Int(value)
        }
        timestamp = now.timeIntervalSince1970
        if let member = object["timestamp"] {
            let seconds: Double? = switch member {
            case .number(let value): value
            case .text(let text): RFC3339.leadingTimestamp(Array(text.utf8))?.timeIntervalSince1970
            case .other: nil
            }
            // The years a stored time can have (to 9999).
            guard let seconds, (0..<253_402_300_800).contains(seconds) else {
                throw .invalid("timestamp: give RFC 3339 text (2026-01-01T00:00:00Z) or Unix seconds")
            }
            timestamp = seconds
        }
        var values: [String: Double] = [:]
        var ignored: [String] = []
        for key in object.keys.sorted() where key != "step" && key != "timestamp" {
            let value = try number(key, object[key]!)
            if metricNames.contains(key) { values[key] = value } else { ignored.append(key) }
        }
        guard !values.isEmpty else {
            throw .invalid("the report has none of the experiment's metrics (\(metricNames.joined(separator: ", ")))"
                           + (ignored.isEmpty ? "" : "; it has \(ignored.prefix(10).joined(separator: ", "))"))
        }
        self.values = values
        self.ignored = ignored
    }

    /// The report as the line the trial's metrics file gets: JSON, the metrics, step and timestamp.
    public var line: [UInt8] {
        var members = values.keys.sorted().map { "\(Self.quoted($0)):\(values[$0]!.description)" }
        if let step { members.append("\"step\":\(step)") }
        members.append("\"timestamp\":\(timestamp.description)")
        return Array(("{" + members.joined(separator: ",") + "}\n").utf8)
    }

    private static func quoted(_ name: String) -> String {
        let data = (try? JSONEncoder().encode(name)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
