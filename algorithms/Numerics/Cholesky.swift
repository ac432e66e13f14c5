// Notation: A = L·Lᵀ for a symmetric positive-definite n×n A (row-major), L lower triangular.

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
                for j in 0..<n {
                    var d = a[j * n + j] + jitter
                    for k in 0..<j { d -= l[j * n + k] * l[j * n + k] }
                    guard d > 0, d.isFinite else { return false }
                    let ljj = d.squareRoot()
                    l[j * n + j] = ljj
                    for i in (j + 1)..<max(j + 1, n) {
                        var s = a[i * n + j]
                        for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
                        l[i * n + j] = s / ljj
                    }
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
                for i in 0..<n {
                    var s = x[i]
                    for k in 0..<i { s -= l[i * n + k] * x[k] }
                    x[i] = s / l[i * n + i]
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

    /// Solves A·x = b.
    public func solve(_ b: [Double]) -> [Double] { solveUpper(solveLower(b)) }

    /// log det A.
    public var logDeterminant: Double {
        2 * (0..<n).map { log(L[$0 * n + $0]) }.reduce(0, +)
    }

    /// A⁻¹ (row-major) = L⁻ᵀ·L⁻¹, from the factor.
    public func inverse() -> [Double] {
        // M = L⁻¹, lower triangular, column by column.
        var m = [Double](repeating: 0, count: n * n)
        L.withUnsafeBufferPointer { l in
            m.withUnsafeMutableBufferPointer { m in
                for j in 0..<n {
                    m[j * n + j] = 1 / l[j * n + j]
                    for i in (j + 1)..<max(j + 1, n) {
                        var s = 0.0
                        for k in j..<i { s -= l[i * n + k] * m[k * n + j] }
                        m[i * n + j] = s / l[i * n + i]
                    }
                }
            }
        }
        // A⁻¹[i][j] = Σ_{k ≥ max(i,j)} M[k][i]·M[k][j].
        var result = [Double](repeating: 0, count: n * n)
        m.withUnsafeBufferPointer { m in
            result.withUnsafeMutableBufferPointer { r in
                for i in 0..<n {
                    for j in 0...i {
                        var s = 0.0
                        for k in i..<n { s += m[k * n + i] * m[k * n + j] }
                        r[i * n + j] = s
                        r[j * n + i] = s
                    }
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

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
