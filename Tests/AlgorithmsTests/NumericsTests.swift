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
