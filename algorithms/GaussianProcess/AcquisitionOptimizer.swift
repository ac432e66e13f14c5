// Notation: a(x) is the acquisition over the unit cube, to maximize. Coordinates are continuous,
// discrete (a finite set of encoded values: ints, stepped doubles, Katib's discrete lists) or
// categorical. A coordinate is *enumerated* when it is categorical or has at most `enumerationLimit`
// values: the local search tries each of its values in turn. Other discrete coordinates move with
// the continuous ones and are rounded to their nearest value.
// Local moves of continuous coordinates run in u_j = x_j/ℓ_j (ℓ the kernel's lengthscales), where the
// acquisition is about equally curved in every direction.

/// Maximizes an acquisition function: a Sobol set of candidates, local searches from the best
/// candidate, from candidates drawn with probability ∝ exp(a(x) − max a) and from given points,
/// and the best point they reach.
struct AcquisitionOptimizer {
    /// Coordinates with at most this many values are searched by enumeration.
    static let enumerationLimit = 16

    let dimension: Int
    /// The encoded values of each coordinate, `nil` for a continuous one.
    let grids: [[Double]?]
    let categorical: [Bool]
    /// Lengthscales of the coordinates, for the local moves.
    let scales: [Double]

    /// Coordinates the local quasi-Newton moves: continuous ones and large discrete ones.
    var moved: [Int] {
        (0..<dimension).filter { j in !categorical[j] && (grids[j]?.count ?? Int.max) > Self.enumerationLimit }
    }

    /// Coordinates searched by enumeration.
    var enumerated: [Int] {
        (0..<dimension).filter { j in categorical[j] || (grids[j]?.count ?? Int.max) <= Self.enumerationLimit }
    }

    /// Rounds every discrete coordinate of x to its nearest value.
    func snap(_ x: [Double]) -> [Double] {
        var x = x
        for j in 0..<dimension {
            guard let grid = grids[j], !grid.isEmpty else { continue }
            var best = grid[0]
            for value in grid where abs(value - x[j]) < abs(best - x[j]) { best = value }
            x[j] = best
        }
        return x
    }

    /// The maximizer found, and its value.
    /// - Parameters:
    ///   - candidates: points to screen (snapped here).
    ///   - starts: extra starting points for local searches (e.g. the best completed point).
    ///   - localSearches: the number of local searches, the extra starts included.
    ///   - values: a(x) at many points (m×d row-major).
    ///   - valueAndGradient: a(x) and ∇a(x) at one point.
    func maximize(
        candidates: [[Double]], starts: [[Double]], localSearches: Int, rng: inout SeededGenerator,
        values: ([Double], Int) -> [Double], valueAndGradient: ([Double]) -> (value: Double, gradient: [Double])
    ) -> [(x: [Double], value: Double)] {
        let pool = candidates.map(snap)
        let screened = values(pool.flatMap { $0 }, pool.count)
        var order = Array(pool.indices).filter { screened[$0].isFinite }
        order.sort { screened[$0] > screened[$1] }
        guard let top = order.first else { return [] }
        // The best candidate, then a roulette over the others.
        var chosen = [top]
        var weights = pool.indices.map { i in i == top || !screened[i].isFinite ? 0 : exp(screened[i] - screened[top]) }
        let draws = max(0, localSearches - 1 - starts.count)
        for _ in 0..<draws {
            let total = weights.reduce(0, +)
            guard total > 0, total.isFinite else { break }
            var u = rng.unit() * total
            var pick = weights.lastIndex { $0 > 0 } ?? top
            for (i, w) in weights.enumerated() where w > 0 {
                u -= w
                if u <= 0 { pick = i; break }
            }
            chosen.append(pick)
            weights[pick] = 0
        }
        var results: [(x: [Double], value: Double)] = []
        for start in chosen.map({ pool[$0] }) + starts.map(snap) {
            results.append(localSearch(from: start, values: values, valueAndGradient: valueAndGradient))
        }
        // The screened candidates after the local optima, as fallbacks for a caller that must skip some.
        results.sort { $0.value > $1.value }
        return results + order.prefix(200).map { (pool[$0], screened[$0]) }
    }

    /// Alternates a quasi-Newton search over the moved coordinates and enumeration of the others,
    /// until neither improves.
    func localSearch(
        from start: [Double], values: ([Double], Int) -> [Double], valueAndGradient: ([Double]) -> (value: Double, gradient: [Double])
    ) -> (x: [Double], value: Double) {
        var x = start
        var fx = values(x, 1)[0]
        let moved = self.moved, enumerated = self.enumerated
        for _ in 0..<4 {
            var improved = false
            if !moved.isEmpty {
                let u0 = moved.map { x[$0] / scales[$0] }
                let upper = moved.map { 1 / scales[$0] }
                var base = x
                // The acquisition is a log: a step that changes it by less than 1e-4 relative changes
                // expected improvement by about 0.01 %, and further steps are not worth their cost.
                let result = LBFGS.minimize(u0, lower: Array(repeating: 0, count: moved.count), upper: upper, maxIterations: 100, tolerance: 1e-4) { u in
                    for (k, j) in moved.enumerated() { base[j] = u[k] * scales[j] }
                    let (value, gradient) = valueAndGradient(base)
                    return (-value, moved.map { -gradient[$0] * scales[$0] })
                }
                var candidate = x
                for (k, j) in moved.enumerated() { candidate[j] = min(1, max(0, result.x[k] * scales[j])) }
                candidate = snap(candidate)
                let value = values(candidate, 1)[0]
                if value > fx + 1e-12 * abs(fx) {
                    x = candidate
                    fx = value
                    improved = true
                }
            }
            for j in enumerated {
                guard let grid = grids[j], grid.count > 1 else { continue }
                var trial: [Double] = []
                for value in grid { var p = x; p[j] = value; trial += p }
                let scores = values(trial, grid.count)
                if let best = scores.indices.max(by: { scores[$0] < scores[$1] }), scores[best] > fx, grid[best] != x[j] {
                    x[j] = grid[best]
                    fx = scores[best]
                    improved = true
                }
            }
            if !improved || enumerated.isEmpty || moved.isEmpty { break }
        }
        return (x, fx)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
