import Foundation
import SwiftProtobuf

/// A scalar read from a TensorBoard event file.
public struct TensorBoardScalar: Sendable, Hashable {
    public var tag: String
    public var value: Double
    public var step: Int
    public var wallTime: Double
}

/// Splits a TFRecord stream (each record: its length as a little-endian UInt64, a 4-byte CRC of
/// the length, the data, a 4-byte CRC of the data) into records as bytes arrive; a record cut
/// short waits for the rest.
struct TFRecordReader {
    private var pending: [UInt8] = []
    /// A record longer than this is not a TensorBoard event: the stream is not an event file.
    static let maxRecordBytes = 64 << 20
    private(set) var corrupt = false

    mutating func feed(_ bytes: [UInt8]) -> [[UInt8]] {
        guard !corrupt else { return [] }
        pending.append(contentsOf: bytes)
        var records: [[UInt8]] = []
        var start = 0
        while pending.count - start >= 12 {
            var length = 0
            for i in 0..<8 { length |= Int(pending[start + i]) << (8 * i) }
            guard length >= 0, length <= Self.maxRecordBytes else {
                corrupt = true
                break
            }
            guard pending.count - start >= 12 + length + 4 else { break }
            records.append(Array(pending[(start + 12)..<(start + 12 + length)]))
            start += 12 + length + 4
        }
        pending.removeFirst(start)
        return records
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
final class TensorBoardDirectory {
    let path: String
    private var files: [String: (tail: FileTail, records: TFRecordReader)] = [:]

    init(path: String) {
        self.path = path
    }

    /// New scalars, file by file in name order.
    func read() -> [(name: String, alias: String, scalar: TensorBoardScalar)] {
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
        }
        return result
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
