/// What CMAState and CatCMAState keep alike, written and read in one place: the Gaussian's arrays first, and the
/// history of each generation's best and worst values that their stopping rules read.
extension StateWriter {
    /// The mean, covariance C, evolution paths pσ and pc, and A, B and D (C's eigen-decomposition) of the search
    /// distribution, in that order.
    mutating func gaussian(_ mean: [Double], _ C: [Double], _ pSigma: [Double], _ pc: [Double], _ A: [Double], _ B: [Double], _ D: [Double]) {
        for vector in [mean, C, pSigma, pc, A, B, D] { doubles(vector) }
    }

    /// The generations' best and worst values, as two arrays.
    mutating func valueHistory(_ history: [(best: Double, worst: Double)]) {
        doubles(history.map(\.best))
        doubles(history.map(\.worst))
    }
}

extension StateReader {
    /// What `StateWriter.gaussian` wrote for an `n`-dimensional distribution; throws when a length does not fit `n`.
    mutating func gaussian(dimension n: Int) throws(Malformed)
        -> (mean: [Double], C: [Double], pSigma: [Double], pc: [Double], A: [Double], B: [Double], D: [Double]) {
        (try doubles(count: n), try doubles(count: n * n), try doubles(count: n), try doubles(count: n), try doubles(count: n),
         try doubles(count: n * n), try doubles(count: n))
    }

    /// What `StateWriter.valueHistory` wrote; throws when it is longer than `limit`, the state's own bound.
    mutating func valueHistory(limit: Int) throws(Malformed) -> [(best: Double, worst: Double)] {
        let best = try doubles()
        let worst = try doubles(count: best.count)
        guard best.count <= limit else { throw Malformed() }
        return Array(zip(best, worst))
    }
}
