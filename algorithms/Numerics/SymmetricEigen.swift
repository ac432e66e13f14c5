// Notation: A is an n×n symmetric matrix in row-major storage, A = B·diag(λ)·Bᵀ with B orthonormal
// (eigenvectors in its columns).

/// Eigen-decomposition of a symmetric matrix by the cyclic Jacobi method: accurate to machine
/// precision, robust for the small, well-scaled matrices of CMA-ES (n up to a few dozen).
public struct SymmetricEigen: Sendable {
    /// Eigenvalues, in no particular order.
    public var values: [Double]
    /// Row-major n×n; column j is the eigenvector of `values[j]`.
    public var vectors: [Double]
    public let n: Int

    public init(_ matrix: [Double], n: Int, maxSweeps: Int = 50) {
        precondition(matrix.count == n * n, "matrix has \(matrix.count) entries, not \(n)×\(n)")
        self.n = n
        var a = matrix
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        a.withUnsafeMutableBufferPointer { a in
            v.withUnsafeMutableBufferPointer { v in
                for _ in 0..<maxSweeps {
                    var off = 0.0, diagonal = 0.0
                    for p in 0..<n {
                        diagonal += a[p * n + p] * a[p * n + p]
                        for q in (p + 1)..<n { off += a[p * n + q] * a[p * n + q] }
                    }
                    // Off-diagonal mass negligible next to the diagonal (or exactly zero).
                    if off <= 1e-30 * diagonal || off < 1e-300 { break }
                    for p in 0..<n {
                        for q in (p + 1)..<n {
                            let apq = a[p * n + q]
                            if abs(apq) <= 1e-18 * (abs(a[p * n + p]) + abs(a[q * n + q])) { continue }
                            let app = a[p * n + p], aqq = a[q * n + q]
                            let theta = (aqq - app) / (2 * apq)
                            let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                            let c = 1 / (t * t + 1).squareRoot(), s = t * c
                            for k in 0..<n {
                                let akp = a[k * n + p], akq = a[k * n + q]
                                a[k * n + p] = c * akp - s * akq
                                a[k * n + q] = s * akp + c * akq
                            }
                            for k in 0..<n {
                                let apk = a[p * n + k], aqk = a[q * n + k]
                                a[p * n + k] = c * apk - s * aqk
                                a[q * n + k] = s * apk + c * aqk
                            }
                            for k in 0..<n {
                                let vkp = v[k * n + p], vkq = v[k * n + q]
                                v[k * n + p] = c * vkp - s * vkq
                                v[k * n + q] = s * vkp + c * vkq
                            }
                        }
                    }
                }
            }
        }
        values = (0..<n).map { a[$0 * n + $0] }
        vectors = v
    }
}
