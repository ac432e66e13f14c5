import Foundation
import SwiftProtobuf

/// A scalar read from a TensorBoard event file.
public struct TensorBoardScalar: Sendable, Hashable {
    public var tag: String
    public var value: Double
    public var step: Int
    public var wallTime: Double
}

/// Splits a TFRecord stream (each record: its length as a little-endian UInt64, the masked CRC-32C
/// of the length, the data, the masked CRC-32C of the data) into records as bytes arrive; a record
/// cut short waits for the rest. A record whose data fails its CRC is skipped and counted; a length
/// that fails its CRC (or is absurd) leaves no way to find the next record, so the rest of the
/// stream is not read.
struct TFRecordReader {
    private var pending: [UInt8] = []
    /// A record longer than this is not a TensorBoard event: the stream is not an event file.
    static let maxRecordBytes = 64 << 20
    /// The length framing broke: nothing more is read from this stream.
    private(set) var corrupt = false
    /// Records skipped because their data did not match its CRC.
    private(set) var skippedRecords = 0

    mutating func feed(_ bytes: [UInt8]) -> [[UInt8]] {
        guard !corrupt else { return [] }
        pending.append(contentsOf: bytes)
        var records: [[UInt8]] = []
        var start = 0
        while pending.count - start >= 12 {
            var length = 0
            for i in 0..<8 { length |= Int(pending[start + i]) << (8 * i) }
            guard CRC32C.masked(pending[start..<(start + 8)]) == Self.little32(pending, at: start + 8),
                  length >= 0, length <= Self.maxRecordBytes else {
                corrupt = true
                break
            }
            guard pending.count - start >= 12 + length + 4 else { break }
            let data = pending[(start + 12)..<(start + 12 + length)]
            if CRC32C.masked(data) == Self.little32(pending, at: start + 12 + length) {
                records.append(Array(data))
            } else {
                skippedRecords += 1
            }
            start += 12 + length + 4
        }
        pending.removeFirst(start)
        return records
    }

    private static func little32(_ bytes: [UInt8], at index: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[index + $1]) << (8 * $1) }
    }
}

/// CRC-32C (Castagnoli), masked as TFRecord files store it.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { index in
        (0..<8).reduce(UInt32(index)) { crc, _ in crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }

    static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 {
        ~bytes.reduce(~UInt32(0)) { crc, byte in table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    }

    static func masked(_ bytes: some Collection<UInt8>) -> UInt32 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

enum TensorBoardEvents {
    /// The scalars of one event record (none when it holds no summary or cannot be read).
    static func scalars(inRecord record: [UInt8]) -> [TensorBoardScalar] {
        guard let event = try? Knob_Tensorboard_Event(serializedBytes: record), case .summary(let summary)? = event.what else { return [] }
        return summary.value.compactMap { value in
            let number: Double?
            switch value.value {
            case .simpleValue(let x): number = Double(x)
            case .tensor(let tensor): number = scalar(of: tensor)
            case nil: number = nil
            }
            guard let number, number.isFinite else { return nil }
            return TensorBoardScalar(tag: value.tag, value: number, step: Int(clamping: event.step), wallTime: event.wallTime)
        }
    }

    /// The value of a one-element tensor of a number type (TF2's scalars), else nil.
    static func scalar(of tensor: Knob_Tensorboard_TensorProto) -> Double? {
        if let x = tensor.floatVal.first { return Double(x) }
        if let x = tensor.doubleVal.first { return x }
        if let x = tensor.int64Val.first { return Double(x) }
        let content = [UInt8](tensor.tensorContent)
        func little<T: FixedWidthInteger>(_: T.Type) -> T? {
            guard content.count == MemoryLayout<T>.size else { return nil }
            return content.reversed().reduce(T(0)) { $0 << 8 | T($1) }
        }
        switch tensor.dtype {
        case 1: return little(UInt32.self).map { Double(Float(bitPattern: $0)) }
        case 2: return little(UInt64.self).map { Double(bitPattern: $0) }
        case 3: return tensor.intVal.first.map(Double.init) ?? little(UInt32.self).map { Double(Int32(bitPattern: $0)) }
        case 9: return little(UInt64.self).map { Double(Int64(bitPattern: $0)) }
        case 19: return tensor.halfVal.first.map { Double(Float16(bitPattern: UInt16(truncatingIfNeeded: $0))) }
            ?? little(UInt16.self).map { Double(Float16(bitPattern: $0)) }
        default: return nil
        }
    }
}

/// The event files under a directory (subdirectories included, as TensorBoard lays out runs),
/// followed as they grow: each read returns the scalars written since the last one, named by
/// their tag, or by `subdirectory/tag` for a file in a subdirectory.
public final class TensorBoardDirectory {
    public let path: String
    private var files: [String: (tail: FileTail, records: TFRecordReader)] = [:]
    /// Files and records that could not be read, said once each: `events.out.tfevents.1: a record failed its CRC and was skipped`.
    public private(set) var problems: [String] = []
    private var said: [String: (skipped: Int, corrupt: Bool)] = [:]

    public init(path: String) {
        self.path = path
    }

    /// New scalars, file by file in name order: each with its tag as `name` and, for a file in a
    /// subdirectory, `subdirectory/tag` as `alias` (else the tag again).
    public func read() -> [(name: String, alias: String, scalar: TensorBoardScalar)] {
        for file in Self.eventFiles(under: path) where files[file] == nil {
            files[file] = (FileTail(path: "\(path)/\(file)"), TFRecordReader())
        }
        var result: [(String, String, TensorBoardScalar)] = []
        for file in files.keys.sorted() {
            guard var entry = files[file] else { continue }
            let folder = (file as NSString).deletingLastPathComponent
            while true {
                let chunk = entry.tail.read()
                if chunk.isEmpty { break }
                for record in entry.records.feed(chunk) {
                    for scalar in TensorBoardEvents.scalars(inRecord: record) {
                        result.append((scalar.tag, folder.isEmpty ? scalar.tag : "\(folder)/\(scalar.tag)", scalar))
                    }
                }
            }
            files[file] = entry
            let before = said[file] ?? (0, false)
            if entry.records.skippedRecords > before.skipped {
                problems.append("\(file): \(entry.records.skippedRecords - before.skipped) record(s) failed their CRC and were skipped")
            }
            if entry.records.corrupt, !before.corrupt {
                problems.append("\(file): a record's length failed its CRC; the rest of the file is not read")
            }
            said[file] = (entry.records.skippedRecords, entry.records.corrupt)
        }
        return result
    }

    /// The problems found since the last call.
    public func takeProblems() -> [String] {
        defer { problems.removeAll() }
        return problems
    }

    /// New reports of the metrics in `names`: a scalar counts when its tag, or its
    /// `subdirectory/tag`, is one of them; its step and time are the event's.
    func reports(named names: [String]) -> [MetricReport] {
        let wanted = Set(names)
        return read().compactMap { name, alias, scalar in
            let metric = wanted.contains(alias) ? alias : wanted.contains(name) ? name : nil
            return metric.map { MetricReport(name: $0, value: scalar.value, timestamp: Date(timeIntervalSince1970: scalar.wallTime), step: scalar.step) }
        }
    }

    /// Paths, relative to `root`, of the files whose name holds `tfevents`.
    static func eventFiles(under root: String) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var found: [String] = []
        while let item = walker.nextObject() as? String {
            if (item as NSString).lastPathComponent.contains("tfevents") { found.append(item) }
            if found.count >= 10_000 { break }
        }
        return found.sorted()
    }
}
