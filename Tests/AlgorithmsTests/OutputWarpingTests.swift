import Foundation
import Testing
@testable import KnobAlgorithms

@Suite struct OutputWarpingTests {
    /// n draws of N(0, 1).
    static func normal(_ n: Int, seed: UInt64) -> [Double] {
        var rng = SeededGenerator(seed: seed)
        return (0..<n).map { _ in rng.nextGaussian() }
    }

    @Test func theTransformIsIncreasingAndTheIdentityAtOne() {
        let z = stride(from: -6.0, through: 6.0, by: 0.25).map { $0 }
        for lambda in [0, 0.3, 1, 1.7, 2] {
            let t = z.map { OutputWarping.transform($0, lambda: lambda) }
            #expect(zip(t, t.dropFirst()).allSatisfy { $0 < $1 }, "λ=\(lambda) is not increasing")
            #expect(OutputWarping.transform(0, lambda: lambda) == 0)
        }
        for value in z { #expect(abs(OutputWarping.transform(value, lambda: 1) - value) < 1e-12) }
        // The ends of the range are the logarithms, approached continuously.
        #expect(abs(OutputWarping.transform(3, lambda: 1e-7) - log(4)) < 1e-6)
        #expect(abs(OutputWarping.transform(-3, lambda: 2 - 1e-7) + log(4)) < 1e-6)
    }

    @Test func lambdaFollowsTheSkew() {
        // A symmetric sample is left about as it is; a long tail of high values (a loss spanning
        // orders of magnitude) is drawn in (λ < 1); a long tail of low values the other way.
        let symmetric = Self.normal(2000, seed: 1)
        let highTail = Self.normal(2000, seed: 2).map { exp(1.5 * $0) }
        let lowTail = highTail.map { -$0 }
        let a = OutputWarping(symmetric, kind: .yeoJohnson).lambda!
        let b = OutputWarping(highTail, kind: .yeoJohnson).lambda!
        let c = OutputWarping(lowTail, kind: .yeoJohnson).lambda!
        #expect(abs(a - 1) < 0.15, "symmetric sample: λ=\(a)")
        #expect(b < 0.5, "high tail: λ=\(b)")
        #expect(c > 1.5, "low tail: λ=\(c)")
    }

    @Test func lambdaMaximizesTheLikelihoodOverItsRange() {
        let y = Self.normal(300, seed: 3).map { exp($0) + 0.3 * $0 }
        let z = OutputWarping.standardized(y)
        let lambda = OutputWarping.maximumLikelihoodLambda(z)
        let best = OutputWarping.logLikelihood(z, lambda: lambda)
        for other in stride(from: 0.0, through: 2.0, by: 0.01) {
            #expect(OutputWarping.logLikelihood(z, lambda: other) <= best + 1e-9, "λ=\(other) beats λ=\(lambda)")
        }
    }

    @Test func theModelsValuesKeepTheOrderAndAreStandardized() {
        let y = Self.normal(200, seed: 4).map { exp(2 * $0) }
        for kind in [OutputWarping.Kind.yeoJohnson, .standardize] {
            let w = OutputWarping(y, kind: kind).values
            let order = y.indices.sorted { y[$0] < y[$1] }
            #expect(zip(order, order.dropFirst()).allSatisfy { w[$0] < w[$1] }, "\(kind) changed the order")
            let mean = w.reduce(0, +) / Double(w.count)
            let variance = w.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(w.count)
            #expect(abs(mean) < 1e-9 && abs(variance - 1) < 1e-9, "\(kind): mean \(mean), variance \(variance)")
        }
        #expect(OutputWarping(y, kind: .standardize).lambda == nil)
        #expect(OutputWarping([2, 2, 2], kind: .yeoJohnson).values == [0, 0, 0])
    }

    @Test func aSuggestionRecordsItsLambda() throws {
        let space = SearchSpace([Parameter(name: "x", kind: .double(min: 0, max: 1, step: nil, scale: .linear))])
        var history = History()
        for u in [0.05, 0.2, 0.4, 0.6, 0.8, 0.95] {
            let assignment = space.decode([u])
            history.trials.append(.init(assignment: assignment, outcome: .completed(exp(8 * assignment["x"]!.numericValue!))))
        }
        for (setting, expected) in [("yeo-johnson", true), ("standardize", false)] {
            let gp = try GPSuggester(context: SuggesterContext(space: space, settings: ["n_initial_points": "3", "output_warping": setting], seed: 5))
            let metadata = try #require(try gp.suggest(count: 1, history: history).first).metadata
            let lambda = try #require(metadata["gp.warping_lambda"])
            #expect((Double(lambda) != nil) == expected, "\(setting): \(lambda)")
            if expected { #expect(Double(lambda)! < 1, "a loss growing exponentially is drawn in: λ=\(lambda)") }
        }
    }
}
