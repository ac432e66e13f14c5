import Foundation
import Testing
@testable import KnobAlgorithms

@Suite struct SobolTests {
    @Test func everyDimensionIsStratifiedAndPairsAreToo() {
        let sobol = SobolSequence(dimension: SobolSequence.maxDimension, seed: 9)
        let points = sobol.points(256)
        for j in 0..<sobol.dimension {
            // 256 points: one in each of 256 equal intervals, in every dimension.
            let cells = Set(points.map { Int($0[j] * 256) })
            #expect(cells.count == 256, "dimension \(j) is not stratified")
        }
        // Two-dimensional projections: 16×16 cells each get one point (a (0,m,2)-net for the first pair).
        let pairCells = Set(points.map { Int($0[0] * 16) * 16 + Int($0[1] * 16) })
        #expect(pairCells.count == 256)
        #expect(SobolSequence(dimension: 3, seed: 1).points(4) != SobolSequence(dimension: 3, seed: 2).points(4), "the seed scrambles")
        #expect(SobolSequence(dimension: 3, seed: 1).points(8) == SobolSequence(dimension: 3, seed: 1).points(8))
        #expect(Array(SobolSequence(dimension: 2, seed: 1).points(8)[4...]) == SobolSequence(dimension: 2, seed: 1).points(4, skip: 4))
    }

    @Test func scramblingBreaksTheCoincidencesBetweenDimensions() {
        // Unscrambled (or only shifted), the second point differs from the first by exactly ½ in
        // every dimension; the linear matrix scramble makes that difference depend on the dimension.
        let points = SobolSequence(dimension: SobolSequence.maxDimension, seed: 4).points(2)
        let differences = (0..<SobolSequence.maxDimension).map { j in
            UInt32(points[0][j] * 4_294_967_296.0) ^ UInt32(points[1][j] * 4_294_967_296.0)
        }
        #expect(differences.allSatisfy { $0 >> 31 == 1 }, "the first digit still splits the interval in two")
        #expect(Set(differences).count > 15, "\(differences)")
    }
}

@Suite struct ExpNegativeTests {
    @Test func bothFormsMatchTheLibraryExponential() {
        // Points across the whole range, including near the steps of k and the underflow edge.
        var xs: [Double] = [0, -1e-300, -0.3465735902799726, -0.34657359027997264, -707.9, -708, -708.1, -745, -800, -1e6]
        var rng = SeededGenerator(seed: 9)
        for _ in 0..<4000 { xs.append(-pow(10, 3.2 * rng.unit() - 6) * 70) }
        while xs.count % 4 != 0 { xs.append(-rng.unit()) }
        for start in stride(from: 0, to: xs.count, by: 4) {
            let x = SIMD4(xs[start], xs[start + 1], xs[start + 2], xs[start + 3])
            let vector = expNegative(x)
            for lane in 0..<4 {
                let v = x[lane], expected = v < -708 ? 0 : exp(v)
                let scalar = expNegative(v)
                #expect(abs(scalar - expected) <= 4 * expected.ulp, "expNegative(\(v)) = \(scalar), exp = \(expected)")
                #expect(vector[lane] == scalar, "the vector form differs at \(v): \(vector[lane]) vs \(scalar)")
            }
        }
    }
}
