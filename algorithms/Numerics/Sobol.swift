// Notation: a Sobol sequence in base 2; dimension j has a primitive polynomial of degree s_j with
// coefficients a_j and initial direction numbers m_{j,1..s_j} (odd, m_k < 2^k). Point i is the XOR of
// the direction numbers v_{j,k} = m_{j,k}·2^(32−k) for the bits k of i's Gray code. Scrambling keeps
// the stratification: a random linear matrix scramble (digit t of a coordinate becomes the parity of
// digits 1…t under a random lower-triangular binary matrix M_j with unit diagonal, applied to every
// direction number) and then a random digital shift (XOR with a per-dimension constant). The shift
// alone would keep the unscrambled sequence's coincidences (its first points repeat the same value in
// several dimensions), which make a small initial design poor.

/// A scrambled Sobol low-discrepancy sequence in [0, 1)^dimension (dimension ≤ 21).
public struct SobolSequence: Sendable {
    public static let maxDimension = 21

    /// (degree, coefficients, initial direction numbers) for dimensions 2…21 (Joe & Kuo's table);
    /// dimension 1 is the van der Corput sequence.
    static let table: [(s: Int, a: UInt32, m: [UInt32])] = [
        (1, 0, [1]), (2, 1, [1, 3]), (3, 1, [1, 3, 1]), (3, 2, [1, 1, 1]), (4, 1, [1, 1, 3, 3]),
        (4, 4, [1, 3, 5, 13]), (5, 2, [1, 1, 5, 5, 17]), (5, 4, [1, 1, 5, 5, 5]), (5, 7, [1, 1, 7, 11, 19]),
        (5, 11, [1, 1, 5, 1, 1]), (5, 13, [1, 1, 1, 3, 11]), (5, 14, [1, 3, 5, 5, 31]), (6, 1, [1, 3, 3, 9, 7, 49]),
        (6, 13, [1, 1, 1, 15, 21, 21]), (6, 16, [1, 3, 1, 13, 27, 49]), (6, 19, [1, 1, 1, 15, 7, 5]),
        (6, 22, [1, 3, 1, 15, 13, 25]), (6, 25, [1, 1, 5, 5, 19, 61]), (7, 1, [1, 3, 7, 11, 23, 15, 103]),
        (7, 4, [1, 3, 7, 13, 13, 15, 69]),
    ]

    public let dimension: Int
    /// Direction numbers, 32 per dimension.
    private let directions: [[UInt32]]
    private let shift: [UInt32]

    public init(dimension: Int, seed: UInt64) {
        precondition(dimension >= 1 && dimension <= Self.maxDimension, "Sobol dimension \(dimension) is not in 1...\(Self.maxDimension)")
        self.dimension = dimension
        var directions: [[UInt32]] = [(0..<32).map { UInt32(1) << (31 - $0) }]
        for j in 1..<dimension {
            let (s, a, m) = Self.table[j - 1]
            var v = [UInt32](repeating: 0, count: 32)
            for k in 0..<s { v[k] = m[k] << (31 - k) }
            if s < 32 {
                for k in s..<32 {
                    var value = v[k - s] ^ (v[k - s] >> s)
                    for bit in 1..<s where (a >> (s - 1 - bit)) & 1 == 1 {
                        value ^= v[k - bit]
                    }
                    v[k] = value
                }
            }
            directions.append(v)
        }
        var rng = SeededGenerator(seed: seed)
        self.directions = directions.map { v in Self.scramble(v, rng: &rng) }
        shift = (0..<dimension).map { _ in UInt32(truncatingIfNeeded: rng.next()) }
    }

    /// The direction numbers of one dimension under a random linear matrix scramble: row t of M
    /// (digit t, the most significant first) has a one on the diagonal and random bits to its left.
    private static func scramble(_ v: [UInt32], rng: inout SeededGenerator) -> [UInt32] {
        let rows: [UInt32] = (0..<32).map { t in
            let left: UInt32 = t == 0 ? 0 : UInt32.max << (32 - t)
            return (UInt32(truncatingIfNeeded: rng.next()) & left) | (1 << (31 - t))
        }
        return v.map { value in
            var scrambled: UInt32 = 0
            for t in 0..<32 where (value & rows[t]).nonzeroBitCount & 1 == 1 {
                scrambled |= 1 << (31 - t)
            }
            return scrambled
        }
    }

    /// The first `count` points after skipping `skip`.
    public func points(_ count: Int, skip: Int = 0) -> [[Double]] {
        var x = [UInt32](repeating: 0, count: dimension)
        var result: [[Double]] = []
        result.reserveCapacity(count)
        for i in 0..<(skip + count) {
            if i > 0 {
                // Gray-code order: flip the direction of the lowest zero bit of i − 1.
                let c = min(31, (~(i - 1)).trailingZeroBitCount)
                for j in 0..<dimension { x[j] ^= directions[j][c] }
            }
            if i >= skip {
                result.append((0..<dimension).map { Double(x[$0] ^ shift[$0]) / 4_294_967_296.0 })
            }
        }
        return result
    }
}
