/// Bytes as lower-case hexadecimal text, and random tokens written that way (the push tokens of
/// trials, the dashboard's one-run token).
public enum HexToken {
    public static func text(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// `byteCount` bytes of the system's random generator, in hex.
    public static func random(byteCount: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return text((0..<byteCount).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
