import Testing
@testable import KnobAlgorithms

@Suite struct SearchSpaceTests {
    static let mixed = SearchSpace([
        Parameter(name: "lr", kind: .double(min: 1e-4, max: 1e-1, step: nil, scale: .log)),
        Parameter(name: "momentum", kind: .double(min: 0.5, max: 0.9, step: nil, scale: .linear)),
        Parameter(name: "dropout", kind: .double(min: 0.1, max: 0.5, step: 0.1, scale: .linear)),
        Parameter(name: "layers", kind: .int(min: 1, max: 5, step: 1, scale: .linear)),
        Parameter(name: "units", kind: .int(min: 16, max: 256, step: 16, scale: .log)),
        Parameter(name: "batch", kind: .discrete(["16", "32", "64"])),
        Parameter(name: "optimizer", kind: .categorical(["sgd", "adam", "rmsprop"])),
    ])

    @Test func decodeAlwaysGivesValidValues() {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            let point = (0..<Self.mixed.dimension).map { _ in rng.unit() }
            let assignment = Self.mixed.decode(point)
            #expect(Self.mixed.contains(assignment), "decoded \(assignment) is outside the space")
        }
        // The corners of the cube decode to the bounds.
        let low = Self.mixed.decode(Array(repeating: 0, count: Self.mixed.dimension))
        let high = Self.mixed.decode(Array(repeating: 1, count: Self.mixed.dimension))
        #expect(low["layers"] == .int(1) && high["layers"] == .int(5))
        #expect(low["optimizer"] == .string("sgd") && high["optimizer"] == .string("rmsprop"))
        #expect(abs((low["lr"]?.numericValue ?? 0) - 1e-4) < 1e-12)
    }

    @Test func encodeThenDecodeIsIdentityOnValidValues() {
        var rng = SeededGenerator(seed: 11)
        for _ in 0..<500 {
            let assignment = Self.mixed.decode((0..<Self.mixed.dimension).map { _ in rng.unit() })
            let roundTrip = Self.mixed.decode(Self.mixed.encode(assignment))
            for parameter in Self.mixed.parameters {
                let a = assignment[parameter.name]!, b = roundTrip[parameter.name]!
                if case .double(let x) = a, case .double(let y) = b {
                    #expect(abs(x - y) <= 1e-9 * max(1, abs(x)), "\(parameter.name): \(x) → \(y)")
                } else {
                    #expect(a == b, "\(parameter.name): \(a) → \(b)")
                }
            }
        }
    }

    @Test func intAndChoiceValuesGetEqualShares() {
        let space = SearchSpace([Parameter(name: "n", kind: .int(min: 1, max: 4, step: 1, scale: .linear))])
        var counts: [Int: Int] = [:]
        for i in 0..<4000 {
            if case .int(let n) = space.decode([(Double(i) + 0.5) / 4000])["n"]! { counts[n, default: 0] += 1 }
        }
        #expect(counts == [1: 1000, 2: 1000, 3: 1000, 4: 1000])
    }

    @Test func steppedDoublesPrintAsWritten() {
        let p = Parameter(name: "d", kind: .double(min: 0.1, max: 0.5, step: 0.1, scale: .linear))
        #expect(p.finiteValues?.map(\.description) == ["0.1", "0.2", "0.3", "0.4", "0.5"])
        #expect(p.cardinality == 5)
        #expect(p.contains(.double(0.30000000000000004)))
        #expect(!p.contains(.double(0.35)))
    }

    @Test func cardinalityIsNilForContinuousAndMultipliesOtherwise() {
        #expect(Self.mixed.cardinality == nil)
        let finite = SearchSpace(Array(Self.mixed.parameters.dropFirst(2)))
        #expect(finite.cardinality == 5 * 5 * 16 * 3 * 3)
    }
}
