// Notation: fANOVA (Hutter, Hoos & Leyton-Brown 2014) over a random forest, as Optuna's
// FanovaImportanceEvaluator computes it. The trials' assignments are encoded as columns in [0, 1];
// a tree partitions that cube into leaves, boxes L with volume |L| (the cube's volume is 1) and value
// v_L. The tree's function is f(x) = v_L for x in L; its mean is μ = Σ |L| v_L and its variance
// V = Σ |L| (v_L − μ)². For a parameter whose columns are S, the marginal a_S(x_S) is f averaged over
// the other columns: a_S(x_S) = Σ_{L ∋ x_S} v_L |L|_{−S}, where |L|_{−S} is L's volume in the other
// columns (those boxes cover the other columns exactly once). The parameter's share in that tree is
// Var(a_S) / V, the variance taken uniformly over S's box. The importance is the share averaged over
// the trees whose V is not 0, and the importances are then divided by their sum.

/// One parameter's importance: its share of the variance of the objective that the parameters
/// explain one at a time.
public struct ParameterImportance: Sendable, Hashable, Codable {
    public var name: String
    /// In [0, 1]; the importances of a space sum to 1, or are all 0.
    public var importance: Double

    public init(name: String, importance: Double) {
        self.name = name
        self.importance = importance
    }
}

/// A completed trial as the importance evaluator sees it: where it was and what it scored.
public struct ScoredAssignment: Sendable, Hashable {
    public var assignment: Assignment
    public var value: Double

    public init(_ assignment: Assignment, _ value: Double) {
        self.assignment = assignment
        self.value = value
    }
}

/// fANOVA parameter importances over a random forest fitted to the trials, as Optuna's default
/// `FanovaImportanceEvaluator` computes them.
///
/// The forest sees the search space's encoding: a numeric parameter is one column, its unit-cube
/// coordinate (a log-scaled one in log units, an int or stepped double with each value owning an
/// equal share); a categorical or discrete parameter is one-hot, a 0/1 column per choice, and its
/// marginal is taken over all those columns at once, as Optuna does. A parameter with a single value
/// has importance 0.
///
/// When the trials tell nothing apart (fewer than 2 usable trials, or every trial scored the same),
/// every importance is 0: no parameter explains any variance.
public struct FanovaImportanceEvaluator: Sendable {
    public var settings: RegressionForestSettings
    public var seed: UInt64

    public init(settings: RegressionForestSettings = .init(), seed: UInt64 = 0) {
        self.settings = settings
        self.seed = seed
    }

    /// Whether `trial` counts: its value is finite and it has a valid value for every parameter.
    public static func isUsable(_ trial: ScoredAssignment, in space: SearchSpace) -> Bool {
        trial.value.isFinite && space.parameters.allSatisfy { p in trial.assignment[p.name].map(p.contains) ?? false }
    }

    /// Every parameter of `space` with its importance, most important first (ties in the space's
    /// order). Trials that are not `isUsable` are left out.
    public func evaluate(_ space: SearchSpace, _ trials: [ScoredAssignment]) -> [ParameterImportance] {
        let encoding = ImportanceEncoding(space: space, trials: trials)
        var raw = [Double](repeating: 0, count: space.parameters.count)
        if encoding.rows >= 2, !encoding.columns.isEmpty {
            let forest = RegressionForest(columns: encoding.columns, y: encoding.targets, settings: settings, seed: seed)
            let trees = forest.trees.map { FanovaTree($0) }.filter { $0.variance > 0 }
            if !trees.isEmpty {
                for (parameter, columns) in encoding.parameterColumns.enumerated() where !columns.isEmpty {
                    let shares = trees.reduce(0.0) { $0 + Swift.max(0, $1.marginalVariance(of: columns)) / $1.variance }
                    raw[parameter] = shares / Double(trees.count)
                }
            }
        }
        let total = raw.reduce(0, +)
        let importances = space.parameters.indices.map { index in
            ParameterImportance(name: space.parameters[index].name, importance: total > 0 ? raw[index] / total : 0)
        }
        return importances.enumerated()
            .sorted { $0.element.importance > $1.element.importance || ($0.element.importance == $1.element.importance && $0.offset < $1.offset) }
            .map(\.element)
    }
}

/// The trials as the forest's columns: per parameter the columns it owns (none for a parameter with
/// a single value; for a list, one per choice that some trial took: a choice no trial took is a
/// column of zeros, which no tree splits).
struct ImportanceEncoding {
    /// One array of `rows` values per column.
    var columns: [[Double]] = []
    var targets: [Double] = []
    /// The columns of each parameter, in the space's order.
    var parameterColumns: [[Int]]
    var rows: Int { targets.count }

    init(space: SearchSpace, trials: [ScoredAssignment]) {
        let usable = trials.filter { FanovaImportanceEvaluator.isUsable($0, in: space) }
        targets = usable.map(\.value)
        parameterColumns = []
        for parameter in space.parameters {
            var owned: [Int] = []
            defer { parameterColumns.append(owned) }
            if parameter.cardinality == 1 { continue }
            let values = usable.map { $0.assignment[parameter.name]! }
            switch parameter.kind {
            case .double, .int:
                owned.append(columns.count)
                columns.append(values.map { parameter.encode($0) })
            case .discrete(let choices), .categorical(let choices):
                for choice in choices {
                    let column = values.map { $0 == .string(choice) ? 1.0 : 0.0 }
                    guard column.contains(1) else { continue }
                    owned.append(columns.count)
                    columns.append(column)
                }
            }
        }
    }
}

/// A fitted tree as fANOVA reads it: its leaves' boxes in the unit cube of the columns, their
/// values, and the mean and variance of the function they make.
struct FanovaTree {
    /// Where a box is narrower than [0, 1] along one column.
    struct Bound: Hashable {
        var column: Int
        var lower: Double
        var upper: Double
        var length: Double { upper - lower }
    }

    struct Leaf {
        var value: Double
        var volume: Double
        /// The leaf's box: its narrowed columns, in column order.
        var box: [Bound]
    }

    let leaves: [Leaf]
    let mean: Double
    let variance: Double

    init(_ tree: RegressionTree) {
        var leaves: [Leaf] = []
        var stack: [(node: Int, box: [Bound])] = [(0, [])]
        while let (node, box) = stack.popLast() {
            guard !tree.isLeaf(node) else {
                leaves.append(Leaf(value: tree.value[node], volume: box.reduce(1) { $0 * $1.length }, box: box))
                continue
            }
            let column = tree.feature[node], threshold = tree.threshold[node]
            var leftBox = box, rightBox = box
            if let k = box.firstIndex(where: { $0.column == column }) {
                leftBox[k].upper = Swift.min(box[k].upper, threshold)
                rightBox[k].lower = Swift.max(box[k].lower, threshold)
            } else {
                let k = box.firstIndex { $0.column > column } ?? box.count
                leftBox.insert(Bound(column: column, lower: 0, upper: Swift.min(1, Swift.max(0, threshold))), at: k)
                rightBox.insert(Bound(column: column, lower: Swift.min(1, Swift.max(0, threshold)), upper: 1), at: k)
            }
            stack.append((tree.right[node], rightBox))
            stack.append((tree.left[node], leftBox))
        }
        self.leaves = leaves
        let total = leaves.reduce(0) { $0 + $1.volume }
        let mean = total > 0 ? leaves.reduce(0) { $0 + $1.volume * $1.value } / total : 0
        self.mean = mean
        variance = total > 0 ? leaves.reduce(0) { $0 + $1.volume * ($1.value - mean) * ($1.value - mean) } / total : 0
    }

    /// The variance of the tree's function averaged over every column but `columns` (sorted),
    /// taken uniformly over the box of `columns`.
    func marginalVariance(of columns: [Int]) -> Double {
        // Each leaf adds (v_L − μ)·|L|_{−S} to the marginal over its box in S.
        var pieces: [(box: [Bound], weight: Double)] = []
        pieces.reserveCapacity(leaves.count)
        for leaf in leaves {
            var weight = leaf.value - mean
            var box: [Bound] = []
            for bound in leaf.box {
                if columns.contains(bound.column) { box.append(bound) } else { weight *= bound.length }
            }
            if weight != 0 { pieces.append((box, weight)) }
        }
        return columns.count == 1 ? Self.sweptVariance(pieces) : Self.pairwiseVariance(pieces)
    }

    /// One column: the marginal is a step function over the leaves' interval ends; its variance
    /// comes from one pass over the steps.
    private static func sweptVariance(_ pieces: [(box: [Bound], weight: Double)]) -> Double {
        var ends: [Double] = [0, 1]
        for piece in pieces {
            if let bound = piece.box.first { ends.append(bound.lower); ends.append(bound.upper) }
        }
        ends.sort()
        var breaks: [Double] = []
        for end in ends where breaks.last != end { breaks.append(end) }
        func index(_ x: Double) -> Int {
            var low = 0, high = breaks.count - 1
            while low < high {
                let middle = (low + high) / 2
                if breaks[middle] < x { low = middle + 1 } else { high = middle }
            }
            return low
        }
        var change = [Double](repeating: 0, count: breaks.count)
        for piece in pieces {
            let bound = piece.box.first
            change[index(bound?.lower ?? 0)] += piece.weight
            change[index(bound?.upper ?? 1)] -= piece.weight
        }
        var level = 0.0, first = 0.0, second = 0.0
        for k in 0..<(breaks.count - 1) {
            level += change[k]
            let width = breaks[k + 1] - breaks[k]
            first += width * level
            second += width * level * level
        }
        return second - first * first
    }

    /// Several columns (a one-hot parameter): E[a²] = Σ_{P,Q} w_P w_Q |P ∩ Q| over the pieces,
    /// with pieces of the same box merged first.
    private static func pairwiseVariance(_ pieces: [(box: [Bound], weight: Double)]) -> Double {
        var position: [[Bound]: Int] = [:]
        var boxes: [[Bound]] = [], weights: [Double] = []
        for piece in pieces {
            if let k = position[piece.box] {
                weights[k] += piece.weight
            } else {
                position[piece.box] = boxes.count
                boxes.append(piece.box)
                weights.append(piece.weight)
            }
        }
        var first = 0.0, second = 0.0
        for p in boxes.indices {
            let volume = boxes[p].reduce(1) { $0 * $1.length }
            first += weights[p] * volume
            var shared = 0.0
            for q in (p + 1)..<boxes.count { shared += weights[q] * intersection(boxes[p], boxes[q]) }
            second += weights[p] * (weights[p] * volume + 2 * shared)
        }
        return second - first * first
    }

    /// The volume shared by two boxes, each given by its narrowed columns in column order.
    private static func intersection(_ a: [Bound], _ b: [Bound]) -> Double {
        var volume = 1.0
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a[i].column < b[j].column) {
                volume *= a[i].length
                i += 1
            } else if i == a.count || b[j].column < a[i].column {
                volume *= b[j].length
                j += 1
            } else {
                volume *= Swift.max(0, Swift.min(a[i].upper, b[j].upper) - Swift.max(a[i].lower, b[j].lower))
                i += 1
                j += 1
            }
            if volume == 0 { return 0 }
        }
        return volume
    }
}
