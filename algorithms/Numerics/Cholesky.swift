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
        for j in 0..<n {
            var d = a[j * n + j] + jitter
            for k in 0..<j { d -= l[j * n + k] * l[j * n + k] }
            guard d > 0, d.isFinite else { return nil }
            let ljj = d.squareRoot()
            l[j * n + j] = ljj
            for i in (j + 1)..<max(j + 1, n) {
                var s = a[i * n + j]
                for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
                l[i * n + j] = s / ljj
            }
        }
        return l
    }

    /// Solves L·x = b.
    public func solveLower(_ b: [Double]) -> [Double] {
        var x = b
        for i in 0..<n {
            var s = x[i]
            for k in 0..<i { s -= L[i * n + k] * x[k] }
            x[i] = s / L[i * n + i]
        }
        return x
    }

    /// Solves Lᵀ·x = b.
    public func solveUpper(_ b: [Double]) -> [Double] {
        var x = b
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = x[i]
            for k in (i + 1)..<max(i + 1, n) { s -= L[k * n + i] * x[k] }
            x[i] = s / L[i * n + i]
        }
        return x
    }

    /// Solves A·x = b.
    public func solve(_ b: [Double]) -> [Double] { solveUpper(solveLower(b)) }

    /// log det A.
    public var logDeterminant: Double {
        2 * (0..<n).map { log(L[$0 * n + $0]) }.reduce(0, +)
    }

    /// A⁻¹ (row-major), from the factor.
    public func inverse() -> [Double] {
        var result = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            var e = [Double](repeating: 0, count: n)
            e[j] = 1
            let column = solve(e)
            for i in 0..<n { result[i * n + j] = column[i] }
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
