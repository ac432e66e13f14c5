import Foundation
import Testing
@testable import KnobAlgorithms

@Suite struct RegressionForestTests {
    @Test func aDeepTreeFitsItsDistinctRowsExactly() {
        // With every row drawn, min_samples_leaf 1 and no depth limit, each row ends in its own leaf.
        var generator = SeededGenerator(seed: 4)
        let x = (0..<50).map { _ in generator.unit() }, z = (0..<50).map { _ in generator.unit() }
        let y = zip(x, z).map { sin(6 * $0) + $1 * $1 }
        let forest = RegressionForest(columns: [x, z], y: y, settings: RegressionForestSettings(trees: 8), seed: 1)
        for tree in forest.trees {
            let leaves = tree.feature.filter { $0 < 0 }.count
            #expect(leaves == tree.count / 2 + 1, "a binary tree has one more leaf than inner nodes")
            // Each tree fits the rows it drew exactly: about 63% of them.
            let exact = (0..<50).filter { tree.predict([x[$0], z[$0]]) == y[$0] }.count
            #expect((20...45).contains(exact), "\(exact) of 50 rows fitted exactly")
        }
        let errors = (0..<50).map { abs(forest.predict([x[$0], z[$0]]) - y[$0]) }
        #expect(errors.reduce(0, +) / 50 < 0.1, "mean training error \(errors.reduce(0, +) / 50)")
    }

    @Test func depthAndLeafSizeAreRespected() {
        var generator = SeededGenerator(seed: 5)
        let x = (0..<200).map { _ in generator.unit() }
        let y = x.map { $0 * $0 }
        let shallow = RegressionForest(columns: [x], y: y, settings: RegressionForestSettings(trees: 3, maxDepth: 2), seed: 2)
        for tree in shallow.trees { #expect(tree.count <= 7, "depth 2 holds at most 7 nodes, found \(tree.count)") }
        let stump = RegressionForest(columns: [x], y: y, settings: RegressionForestSettings(trees: 3, maxDepth: 0), seed: 2)
        #expect(stump.trees.allSatisfy { $0.count == 1 })
    }
}

@Suite struct FanovaImportanceTests {
    /// Six parameters in [-1, 1]; only x0 and x3 change the objective.
    static let space = SearchSpace((0..<6).map { Parameter(name: "x\($0)", kind: .double(min: -1, max: 1, step: nil, scale: .linear)) })

    static func trials(_ count: Int, seed: UInt64, objective: ([Double]) -> Double) -> [ScoredAssignment] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            let point = (0..<6).map { _ in generator.unit() * 2 - 1 }
            let assignment = Assignment(Dictionary(uniqueKeysWithValues: point.enumerated().map { ("x\($0.offset)", ParameterValue.double($0.element)) }))
            return ScoredAssignment(assignment, objective(point))
        }
    }

    static func twoThatMatter(_ x: [Double]) -> Double { 10 * x[0] * x[0] + 5 * sin(3 * x[3]) }

    @Test func theTwoParametersThatMatterRankFirst() {
        let importances = FanovaImportanceEvaluator(seed: 7).evaluate(Self.space, Self.trials(200, seed: 11, objective: Self.twoThatMatter))
        #expect(Set(importances.prefix(2).map(\.name)) == ["x0", "x3"], "\(importances)")
        #expect(importances.dropFirst(2).allSatisfy { $0.importance < 0.05 }, "\(importances)")
        #expect(importances.allSatisfy { (0...1).contains($0.importance) })
        #expect(abs(importances.map(\.importance).reduce(0, +) - 1) < 1e-12)
        #expect(zip(importances, importances.dropFirst()).allSatisfy { $0.importance >= $1.importance }, "sorted, most important first")
    }

    @Test func theSharesFollowTheVariancesOfTheMainEffects() {
        // f = a(x0) + b(x3) with x uniform on [-1, 1]: Var(10·x0²) = 100·(1/5 − 1/9) ≈ 8.89 and
        // Var(5·sin 3x3) = 25·(1/2 − sin 6/12) ≈ 13.08, so x3 holds about 60% of the explained variance.
        let importances = FanovaImportanceEvaluator(seed: 3).evaluate(Self.space, Self.trials(400, seed: 12, objective: Self.twoThatMatter))
        let x3 = importances.first { $0.name == "x3" }!.importance, x0 = importances.first { $0.name == "x0" }!.importance
        let sineVariance: Double = 25 * (0.5 - sin(6.0) / 12)
        let squareVariance: Double = 100 * (0.2 - 1.0 / 9)
        let expected = sineVariance / (sineVariance + squareVariance)
        #expect(abs(x3 / (x0 + x3) - expected) < 0.08, "x3's share of the two is \(x3 / (x0 + x3)), expected about \(expected)")
    }

    @Test func theSameSeedGivesTheSameImportancesAndAnotherSeedOthers() {
        let trials = Self.trials(120, seed: 13, objective: Self.twoThatMatter)
        let a = FanovaImportanceEvaluator(seed: 1).evaluate(Self.space, trials)
        let b = FanovaImportanceEvaluator(seed: 1).evaluate(Self.space, trials)
        let c = FanovaImportanceEvaluator(seed: 2).evaluate(Self.space, trials)
        #expect(a == b)
        #expect(a != c)
    }

    @Test func aCategoricalThatMattersRanksHigh() {
        let space = SearchSpace([
            Parameter(name: "lr", kind: .double(min: 1e-4, max: 1e-1, step: nil, scale: .log)),
            Parameter(name: "optimizer", kind: .categorical(["sgd", "adam", "rmsprop"])),
            Parameter(name: "layers", kind: .int(min: 1, max: 4, step: 1, scale: .linear)),
            Parameter(name: "noise", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
        ])
        var generator = SeededGenerator(seed: 21)
        let penalty = ["sgd": 0.0, "adam": 3.0, "rmsprop": 1.0]
        let trials = (0..<200).map { _ in
            let assignment = space.sample(at: (0..<4).map { _ in generator.unit() })
            let optimizer = assignment["optimizer"]!.description
            let lr = assignment["lr"]!.numericValue!
            // log10(lr) spans 3 units, and matters less than the optimizer's penalty spread.
            return ScoredAssignment(assignment, penalty[optimizer]! + 0.3 * log10(lr) + 0.01 * assignment["noise"]!.numericValue!)
        }
        let importances = FanovaImportanceEvaluator(seed: 5).evaluate(space, trials)
        #expect(importances.map(\.name).prefix(2) == ["optimizer", "lr"], "\(importances)")
        #expect(importances[0].importance > 0.5, "\(importances)")
        #expect(abs(importances.map(\.importance).reduce(0, +) - 1) < 1e-12)
    }

    @Test func aLogScaledParameterIsSplitInLogUnits() {
        // The objective is linear in log10(lr): in the encoding every decade is an equal share, so lr
        // explains nearly all of it; in raw units most of the range would be the last decade.
        let space = SearchSpace([
            Parameter(name: "lr", kind: .double(min: 1e-5, max: 1, step: nil, scale: .log)),
            Parameter(name: "other", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
        ])
        var generator = SeededGenerator(seed: 8)
        let trials = (0..<150).map { _ in
            let assignment = space.sample(at: [generator.unit(), generator.unit()])
            return ScoredAssignment(assignment, log10(assignment["lr"]!.numericValue!) + 0.5 * assignment["other"]!.numericValue!)
        }
        let importances = FanovaImportanceEvaluator(seed: 1).evaluate(space, trials)
        // Var(log10 lr) = 25/12 against Var(0.5·other) = 1/48: lr holds about 99%.
        #expect(importances[0].name == "lr" && importances[0].importance > 0.95, "\(importances)")
    }

    @Test func aConstantObjectiveGivesEveryParameterZero() {
        let importances = FanovaImportanceEvaluator(seed: 1).evaluate(Self.space, Self.trials(50, seed: 1) { _ in 0.87 })
        #expect(importances.count == 6)
        #expect(importances.allSatisfy { $0.importance == 0 })
        #expect(importances.map(\.name) == Self.space.parameters.map(\.name), "ties keep the space's order")
    }

    @Test func tooFewTrialsAndUnusableOnesGiveZero() {
        let one = Self.trials(1, seed: 2, objective: Self.twoThatMatter)
        #expect(FanovaImportanceEvaluator().evaluate(Self.space, one).allSatisfy { $0.importance == 0 })
        var broken = Self.trials(30, seed: 2, objective: Self.twoThatMatter)
        for k in broken.indices { broken[k].value = k < 29 ? .nan : 1 }
        #expect(FanovaImportanceEvaluator().evaluate(Self.space, broken).allSatisfy { $0.importance == 0 })
    }

    @Test func aParameterWithOneValueHasZeroImportance() {
        let space = SearchSpace([
            Parameter(name: "fixed", kind: .int(min: 3, max: 3, step: 1, scale: .linear)),
            Parameter(name: "x", kind: .double(min: 0, max: 1, step: nil, scale: .linear)),
        ])
        var generator = SeededGenerator(seed: 3)
        let trials = (0..<40).map { _ in
            let x = generator.unit()
            return ScoredAssignment(Assignment(["fixed": .int(3), "x": .double(x)]), x * x)
        }
        let importances = FanovaImportanceEvaluator().evaluate(space, trials)
        #expect(importances == [ParameterImportance(name: "x", importance: 1), ParameterImportance(name: "fixed", importance: 0)])
    }

    @Test func theMarginalOfASingleColumnAgreesWithTheBoxFormula() {
        // The one-column sweep and the pairwise sum over boxes are two ways to the same variance.
        var generator = SeededGenerator(seed: 9)
        let x = (0..<80).map { _ in generator.unit() }, z = (0..<80).map { _ in generator.unit() }
        let y = zip(x, z).map { $0 * 3 + $0 * $1 + sin(5 * $1) }
        let forest = RegressionForest(columns: [x, z], y: y, settings: RegressionForestSettings(trees: 4), seed: 3)
        for tree in forest.trees.map(FanovaTree.init) {
            for column in [0, 1] {
                let swept = tree.marginalVariance(of: [column])
                // A second column that no tree splits on adds nothing to the marginal.
                let pairwise = tree.marginalVariance(of: [column, 7])
                #expect(abs(swept - pairwise) <= 1e-9 * max(1, tree.variance), "\(swept) vs \(pairwise)")
                #expect(swept <= tree.variance * (1 + 1e-9))
            }
        }
    }

    @Test func aThousandTrialsOfSixParametersAreEvaluated() {
        // Speed is measured by `knob-bench importance`; here, that the size works and ranks right.
        let importances = FanovaImportanceEvaluator(seed: 1).evaluate(Self.space, Self.trials(1000, seed: 4, objective: Self.twoThatMatter))
        #expect(Set(importances.prefix(2).map(\.name)) == ["x0", "x3"], "\(importances)")
    }
}
