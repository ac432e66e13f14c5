// Notation: A = L·Lᵀ for a symmetric positive-definite n×n A (row-major), L lower triangular.
// Inner loops are dot products of contiguous rows or row updates (y += a·x), written so the
// compiler can use vector instructions.

/// Cholesky factorization with jitter escalation: when A is not numerically positive definite,
/// ε·mean(diag A) is added to the diagonal, ε growing from 1e-10 by ×10 up to 1e-2.
public struct Cholesky: Sendable {
    public let n: Int
    /// Row-major lower-triangular factor.
    public private(set) var L: [Double]
    /// The jitter that was added to the diagonal.
    public let jitter: Double

    public init?(_ a: [Double], n: Int) {
        precondition(a.count == n * n)
        self.n = n
        let meanDiagonal = max(1e-300, (0..<n).map { a[$0 * n + $0] }.reduce(0, +) / Double(max(n, 1)))
        var epsilon = 0.0
        while true {
            if let factor = Self.factor(a, n: n, jitter: epsilon * meanDiagonal) {
                L = factor
                jitter = epsilon * meanDiagonal
                return
            }
            epsilon = epsilon == 0 ? 1e-10 : epsilon * 10
            if epsilon > 1e-2 { return nil }
        }
    }

    private static func factor(_ a: [Double], n: Int, jitter: Double) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        let ok = l.withUnsafeMutableBufferPointer { l -> Bool in
            a.withUnsafeBufferPointer { a -> Bool in
                let l = l.baseAddress!
                // Row by row: L[i][j] = (A[i][j] − L[i][0..<j]·L[j][0..<j]) / L[j][j].
                for i in 0..<n {
                    let row = l + i * n
                    for j in 0..<i {
                        row[j] = (a[i * n + j] - dot(row, l + j * n, j)) / l[j * n + j]
                    }
                    let d = a[i * n + i] + jitter - dot(row, row, i)
                    guard d > 0, d.isFinite else { return false }
                    row[i] = d.squareRoot()
                }
                return true
            }
        }
        return ok ? l : nil
    }

    /// Solves L·x = b.
    public func solveLower(_ b: [Double]) -> [Double] {
        var x = b
        L.withUnsafeBufferPointer { l in
            x.withUnsafeMutableBufferPointer { x in
                let l = l.baseAddress!, x = x.baseAddress!
                for i in 0..<n {
                    x[i] = (x[i] - dot(l + i * n, x, i)) / l[i * n + i]
                }
            }
        }
        return x
    }

    /// Solves Lᵀ·x = b (walking L's rows, which are contiguous).
    public func solveUpper(_ b: [Double]) -> [Double] {
        var x = b
        L.withUnsafeBufferPointer { l in
            x.withUnsafeMutableBufferPointer { x in
                for k in stride(from: n - 1, through: 0, by: -1) {
                    x[k] /= l[k * n + k]
                    let xk = x[k]
                    for i in 0..<k { x[i] -= l[k * n + i] * xk }
                }
            }
        }
        return x
    }

    /// Solves L·V = B in place for B with `columns` columns (n×columns, row-major): one forward
    /// substitution serving every column at once.
    public func solveLowerInPlace(_ b: UnsafeMutablePointer<Double>, columns m: Int) {
        L.withUnsafeBufferPointer { l in
            for i in 0..<n {
                let row = b + i * m
                // Four earlier rows at a time: one load and store of `row` per four updates.
                var k = 0
                while k + 4 <= i {
                    let l0 = l[i * n + k], l1 = l[i * n + k + 1], l2 = l[i * n + k + 2], l3 = l[i * n + k + 3]
                    let s0 = b + k * m, s1 = s0 + m, s2 = s1 + m, s3 = s2 + m
                    for c in 0..<m { row[c] -= (l0 * s0[c] + l1 * s1[c]) + (l2 * s2[c] + l3 * s3[c]) }
                    k += 4
                }
                while k < i {
                    let lik = l[i * n + k]
                    let source = b + k * m
                    for c in 0..<m { row[c] -= lik * source[c] }
                    k += 1
                }
                let inverse = 1 / l[i * n + i]
                for c in 0..<m { row[c] *= inverse }
            }
        }
    }

    /// Solves A·x = b.
    public func solve(_ b: [Double]) -> [Double] { solveUpper(solveLower(b)) }

    /// log det A.
    public var logDeterminant: Double {
        2 * (0..<n).map { log(L[$0 * n + $0]) }.reduce(0, +)
    }

    /// A⁻¹ (row-major) = L⁻ᵀ·L⁻¹, from the factor.
    public func inverse() -> [Double] {
        // M = L⁻¹, lower triangular, row by row: M[i] = (e_i − Σ_{k<i} L[i][k]·M[k]) / L[i][i].
        var m = [Double](repeating: 0, count: n * n)
        var result = [Double](repeating: 0, count: n * n)
        L.withUnsafeBufferPointer { l in
            m.withUnsafeMutableBufferPointer { m in
                let m = m.baseAddress!
                for i in 0..<n {
                    let row = m + i * n
                    for k in 0..<i {
                        let lik = l[i * n + k]
                        let source = m + k * n
                        for j in 0...k { row[j] -= lik * source[j] }
                    }
                    row[i] = 1
                    let inverse = 1 / l[i * n + i]
                    for j in 0...i { row[j] *= inverse }
                }
                // A⁻¹ = Σ_k M[k]ᵀ·M[k]: the lower triangle by rank-one row updates, then mirrored.
                result.withUnsafeMutableBufferPointer { r in
                    let r = r.baseAddress!
                    for k in 0..<n {
                        let source = m + k * n
                        for i in 0...k {
                            let factor = source[i]
                            if factor == 0 { continue }
                            let target = r + i * n
                            for j in 0...i { target[j] += factor * source[j] }
                        }
                    }
                    for i in 0..<n { for j in 0..<i { r[j * n + i] = r[i * n + j] } }
                }
            }
        }
        return result
    }

    /// The factor of A extended by one row and column: [[A, k], [kᵀ, c]].
    public func extended(with k: [Double], diagonal c: Double) -> Cholesky {
        let l = solveLower(k)
        let d = max(c - l.map { $0 * $0 }.reduce(0, +), 1e-12 * max(c, 1e-300))
        var grown = [Double](repeating: 0, count: (n + 1) * (n + 1))
        for i in 0..<n { for j in 0...i { grown[i * (n + 1) + j] = L[i * n + j] } }
        for j in 0..<n { grown[n * (n + 1) + j] = l[j] }
        grown[n * (n + 1) + n] = d.squareRoot()
        return Cholesky(factor: grown, n: n + 1, jitter: jitter)
    }

    private init(factor: [Double], n: Int, jitter: Double) {
        self.L = factor
        self.n = n
        self.jitter = jitter
    }
}

/// Σ a[k]·b[k] for k in 0..<count, with four independent partial sums so the loop vectorizes.
@inline(__always)
func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ count: Int) -> Double {
    var sum = SIMD4<Double>.zero
    var k = 0
    while k + 4 <= count {
        sum += SIMD4(a[k], a[k + 1], a[k + 2], a[k + 3]) * SIMD4(b[k], b[k + 1], b[k + 2], b[k + 3])
        k += 4
    }
    var tail = 0.0
    while k < count {
        tail += a[k] * b[k]
        k += 1
    }
    return sum.sum() + tail
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
