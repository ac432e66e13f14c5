// Notation: minimize f(x) over the box lo ≤ x ≤ hi; g = ∇f; the L-BFGS two-loop recursion builds the
// search direction from the last m pairs (s_k = x_{k+1} − x_k, y_k = g_{k+1} − g_k). Steps are projected
// onto the box; coordinates held at a bound by the gradient are frozen for the direction.

/// A small projected L-BFGS minimizer with a backtracking (Armijo) line search.
public enum LBFGS {
    public struct Result: Sendable {
        public var x: [Double]
        public var value: Double
        public var iterations: Int
    }

    public static func minimize(
        _ start: [Double], lower: [Double], upper: [Double], maxIterations: Int = 100, memory: Int = 8, tolerance: Double = 1e-9,
        _ f: ([Double]) -> (value: Double, gradient: [Double])
    ) -> Result {
        let n = start.count
        func project(_ x: [Double]) -> [Double] { (0..<n).map { min(upper[$0], max(lower[$0], x[$0])) } }
        var x = project(start)
        var (fx, g) = f(x)
        var sHistory: [[Double]] = [], yHistory: [[Double]] = []
        var iterations = 0
        while iterations < maxIterations {
            iterations += 1
            // Free coordinates: not pinned at a bound by the gradient.
            let free = (0..<n).map { i in !((x[i] <= lower[i] && g[i] > 0) || (x[i] >= upper[i] && g[i] < 0)) }
            var q = (0..<n).map { free[$0] ? g[$0] : 0 }
            if q.map({ $0 * $0 }).reduce(0, +).squareRoot() < tolerance { break }
            var alphas: [Double] = []
            for (s, y) in zip(sHistory, yHistory).reversed() {
                let rho = 1 / dot(y, s)
                let alpha = rho * dot(s, q)
                alphas.append(alpha)
                for i in 0..<n { q[i] -= alpha * y[i] }
            }
            if let s = sHistory.last, let y = yHistory.last {
                let gamma = dot(s, y) / dot(y, y)
                for i in 0..<n { q[i] *= gamma }
            }
            for ((s, y), alpha) in zip(zip(sHistory, yHistory), alphas.reversed()) {
                let rho = 1 / dot(y, s)
                let beta = rho * dot(y, q)
                for i in 0..<n { q[i] += s[i] * (alpha - beta) }
            }
            var direction = (0..<n).map { free[$0] ? -q[$0] : 0 }
            if dot(direction, g) >= 0 {
                direction = (0..<n).map { free[$0] ? -g[$0] : 0 }
                sHistory.removeAll()
                yHistory.removeAll()
            }
            // Without curvature pairs the direction is the bare gradient: its first step moves at most
            // one unit in any coordinate.
            let largest = direction.map(abs).max() ?? 0
            var step = sHistory.isEmpty && largest > 1 ? 1 / largest : 1.0
            var accepted: (x: [Double], value: Double, gradient: [Double])?
            for _ in 0..<30 {
                let candidate = project((0..<n).map { x[$0] + step * direction[$0] })
                let (value, gradient) = f(candidate)
                let decrease = dot(g, (0..<n).map { candidate[$0] - x[$0] })
                if value.isFinite, value <= fx + 1e-4 * decrease {
                    accepted = (candidate, value, gradient)
                    break
                }
                step *= 0.5
            }
            guard let next = accepted else { break }
            let s = (0..<n).map { next.x[$0] - x[$0] }
            let y = (0..<n).map { next.gradient[$0] - g[$0] }
            let improvement = fx - next.value
            x = next.x
            g = next.gradient
            fx = next.value
            if dot(s, y) > 1e-12 {
                sHistory.append(s)
                yHistory.append(y)
                if sHistory.count > memory {
                    sHistory.removeFirst()
                    yHistory.removeFirst()
                }
            }
            if improvement < tolerance * max(1, abs(fx)) { break }
        }
        return Result(x: x, value: fx, iterations: iterations)
    }

    @inlinable static func dot(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for i in 0..<a.count { s += a[i] * b[i] }
        return s
    }
}
