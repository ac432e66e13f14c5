// The bytes a suggester keeps in its `SuggesterStateStore`: an 8-byte tag naming the format, a
// 64-bit checksum of the rest, then fields in order, little-endian, with doubles as their bit
// patterns so that they read back exactly.

/// Writes the fields of a suggester's cached state.
struct StateWriter {
    private(set) var bytes: [UInt8]

    /// Starts the bytes of the format `tag` (8 bytes).
    init(tag: [UInt8], reservingCapacity capacity: Int = 0) {
        precondition(tag.count == 8, "a state tag has 8 bytes, not \(tag.count)")
        bytes = tag + [UInt8](repeating: 0, count: 8)
        bytes.reserveCapacity(16 + capacity)
    }

    mutating func uint64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func int(_ value: Int) { uint64(UInt64(bitPattern: Int64(value))) }

    mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }

    mutating func double(_ value: Double) { uint64(value.bitPattern) }

    /// The count, then the values.
    mutating func doubles(_ values: [Double]) {
        int(values.count)
        for value in values { double(value) }
    }

    /// The count, then the values.
    mutating func ints(_ values: [Int]) {
        int(values.count)
        for value in values { int(value) }
    }

    /// The count, then the bytes.
    mutating func data(_ values: [UInt8]) {
        int(values.count)
        bytes.append(contentsOf: values)
    }

    mutating func string(_ value: String) { data(Array(value.utf8)) }

    /// The finished bytes, their checksum filled in.
    func sealed() -> [UInt8] {
        var result = bytes
        StateBytes.seal(&result)
        return result
    }
}

/// Reads the fields of a suggester's cached state, checking every length against what is left:
/// truncated or garbled bytes make it throw, never read out of bounds.
struct StateReader {
    struct Malformed: Error {}

    private let bytes: [UInt8]
    private var position = 16

    /// `nil` unless `bytes` start with `tag` and their checksum holds.
    init?(_ bytes: [UInt8], tag: [UInt8]) {
        guard bytes.count >= 16, bytes.prefix(8).elementsEqual(tag) else { return nil }
        let (stored, actual) = bytes.withUnsafeBytes { raw in
            (UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
             StateBytes.checksum(UnsafeRawBufferPointer(rebasing: raw[16...])))
        }
        guard stored == actual else { return nil }
        self.bytes = bytes
    }

    var isAtEnd: Bool { position == bytes.count }

    mutating func uint64() throws(Malformed) -> UInt64 {
        guard bytes.count - position >= 8 else { throw Malformed() }
        let value = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: position, as: UInt64.self)) }
        position += 8
        return value
    }

    mutating func int() throws(Malformed) -> Int {
        let value = Int64(bitPattern: try uint64())
        guard let int = Int(exactly: value) else { throw Malformed() }
        return int
    }

    /// An integer in `range`.
    mutating func int(in range: ClosedRange<Int>) throws(Malformed) -> Int {
        let value = try int()
        guard range.contains(value) else { throw Malformed() }
        return value
    }

    mutating func bool() throws(Malformed) -> Bool {
        guard position < bytes.count, bytes[position] <= 1 else { throw Malformed() }
        position += 1
        return bytes[position - 1] == 1
    }

    mutating func double() throws(Malformed) -> Double { Double(bitPattern: try uint64()) }

    /// A count that at least `width` bytes per item of what is left could hold.
    private mutating func count(width: Int) throws(Malformed) -> Int {
        let left = bytes.count - position - 8
        guard left >= 0 else { throw Malformed() }
        return try int(in: 0...(left / width))
    }

    /// Doubles, exactly `count` of them when it is given.
    mutating func doubles(count expected: Int? = nil) throws(Malformed) -> [Double] {
        let count = try count(width: 8)
        guard expected == nil || expected == count else { throw Malformed() }
        let values = bytes.withUnsafeBytes { raw in
            (0..<count).map { Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: position + 8 * $0, as: UInt64.self))) }
        }
        position += 8 * count
        return values
    }

    mutating func ints() throws(Malformed) -> [Int] {
        let count = try count(width: 8)
        var values: [Int] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try int()) }
        return values
    }

    mutating func data() throws(Malformed) -> [UInt8] {
        let count = try count(width: 1)
        defer { position += count }
        return Array(bytes[position..<(position + count)])
    }

    mutating func string() throws(Malformed) -> String { String(decoding: try data(), as: UTF8.self) }
}

enum StateBytes {
    /// Fills in the checksum of bytes that have their tag and room for it.
    static func seal(_ bytes: inout [UInt8]) {
        precondition(bytes.count >= 16, "state bytes have a tag and a checksum")
        let sum = bytes.withUnsafeBytes { checksum(UnsafeRawBufferPointer(rebasing: $0[16...])) }
        withUnsafeBytes(of: sum.littleEndian) { sum in
            for k in 0..<8 { bytes[8 + k] = sum[k] }
        }
    }

    /// A 64-bit checksum (multiply–rotate over 8-byte words): it tells damaged or truncated
    /// bytes from what was written, not bytes forged on purpose.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ UInt64(bytes.count)
        let words = bytes.count / 8
        for k in 0..<words {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self))
            h = (h ^ word) &* 0x9E37_79B9_7F4A_7C15
            h = (h << 31) | (h >> 33)
        }
        var tail: UInt64 = 0
        for k in (8 * words)..<bytes.count { tail = tail << 8 | UInt64(bytes[k]) }
        h = (h ^ tail) &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        h = h &* 0xBF58_476D_1CE4_E5B9
        return h ^ (h >> 32)
    }
}
