import Foundation

/// Splits a byte stream into lines, keeping track of how many bytes the complete lines took, so
/// that reading can resume exactly after the last whole line. A line longer than `maxLineBytes`
/// is cut: its first `maxLineBytes` are kept and the rest is skipped up to the next newline.
public struct LineReader: Sendable {
    public let maxLineBytes: Int
    private var pending: [UInt8] = []
    private var skipping = false
    /// Bytes consumed by complete lines (newline included), from where reading began.
    public private(set) var consumed: Int64
    /// Bytes fed so far, from where reading began.
    private var position: Int64

    public init(startingAt offset: Int64 = 0, maxLineBytes: Int = 1 << 20) {
        consumed = offset
        position = offset
        self.maxLineBytes = maxLineBytes
    }

    /// The complete lines in `chunk` (appended to what an earlier chunk left unfinished).
    public mutating func feed(_ chunk: some Collection<UInt8>) -> [[UInt8]] {
        let chunkStart = position
        position += Int64(chunk.count)
        var lines: [[UInt8]] = []
        var start = chunk.startIndex
        var offsetInChunk = 0
        while let newline = chunk[start...].firstIndex(of: 0x0A) {
            let piece = chunk[start..<newline]
            if !skipping {
                pending.append(contentsOf: piece.prefix(Swift.max(0, maxLineBytes - pending.count)))
                lines.append(pending.last == 0x0D ? Array(pending.dropLast()) : pending)
            }
            pending.removeAll(keepingCapacity: true)
            skipping = false
            offsetInChunk += piece.count + 1
            consumed = chunkStart + Int64(offsetInChunk)
            start = chunk.index(after: newline)
        }
        let rest = chunk[start...]
        if !skipping {
            let room = maxLineBytes - pending.count
            pending.append(contentsOf: rest.prefix(room))
            if rest.count > room {
                // Too long: what fits is read as a line, the rest of it is skipped.
                lines.append(pending)
                pending.removeAll(keepingCapacity: true)
                skipping = true
            }
        }
        return lines
    }

    /// The unfinished last line, at the end of the stream.
    public mutating func finish() -> [UInt8]? {
        defer { pending.removeAll() }
        return pending.isEmpty || skipping ? nil : pending
    }
}
