// Notation: n samples (rows) of d features (columns), x[f][i] the value of feature f for sample i,
// y[i] its target. A tree is grown on a bootstrap draw of the rows: w[i] is how many times row i
// was drawn, and rows drawn zero times take no part. A node holds a set of rows; its value is their
// w-weighted mean of y. A split (f, t) sends the rows with x[f][i] ≤ t left and the others right.

/// How a forest is grown. The defaults are those of the random forest that Optuna's fANOVA
/// evaluator fits (scikit-learn's `RandomForestRegressor` with 64 trees, depth 64, every feature
/// considered at every split).
public struct RegressionForestSettings: Sendable, Hashable {
    /// Trees in the forest.
    public var trees: Int = 64
    /// Deepest level a node may be at (the root is at depth 0); a node there is a leaf.
    public var maxDepth: Int = 64
    /// Fewest distinct rows a node needs to be split.
    public var minSamplesSplit: Int = 2
    /// Fewest distinct rows each side of a split must keep.
    public var minSamplesLeaf: Int = 1

    public init(trees: Int = 64, maxDepth: Int = 64, minSamplesSplit: Int = 2, minSamplesLeaf: Int = 1) {
        self.trees = trees
        self.maxDepth = maxDepth
        self.minSamplesSplit = minSamplesSplit
        self.minSamplesLeaf = minSamplesLeaf
    }
}

/// One regression tree (CART, squared error), as arrays indexed by node; node 0 is the root.
public struct RegressionTree: Sendable, Hashable {
    /// The feature a node splits on; -1 for a leaf.
    public var feature: [Int] = []
    /// Rows with the feature at or below it go left.
    public var threshold: [Double] = []
    public var left: [Int] = []
    public var right: [Int] = []
    /// The weighted mean target of the node's rows: what a leaf predicts.
    public var value: [Double] = []

    /// Number of nodes.
    public var count: Int { feature.count }

    public func isLeaf(_ node: Int) -> Bool { feature[node] < 0 }

    /// The prediction for one row of features.
    public func predict(_ row: [Double]) -> Double {
        var node = 0
        while !isLeaf(node) {
            node = row[feature[node]] <= threshold[node] ? left[node] : right[node]
        }
        return value[node]
    }

    mutating func addNode(value: Double) -> Int {
        feature.append(-1)
        threshold.append(0)
        left.append(-1)
        right.append(-1)
        self.value.append(value)
        return feature.count - 1
    }
}

/// A random forest of regression trees: each tree grown on its own bootstrap draw of the rows,
/// each split the best reduction of squared error over every feature, taken in a random order
/// (the order only decides between equally good splits). Deterministic for a seed.
public struct RegressionForest: Sendable {
    public let trees: [RegressionTree]

    /// Two feature values closer than this are one value (scikit-learn's `FEATURE_THRESHOLD`).
    static let featureTolerance = 1e-7

    /// Grows the forest on `columns` (one array of n values per feature) and targets `y`.
    public init(columns: [[Double]], y: [Double], settings: RegressionForestSettings = .init(), seed: UInt64) {
        let n = y.count
        precondition(n >= 1 && !columns.isEmpty, "a forest needs at least one row and one feature")
        precondition(columns.allSatisfy { $0.count == n }, "every feature needs one value per target")
        precondition(settings.trees >= 1 && settings.maxDepth >= 0 && settings.minSamplesSplit >= 2 && settings.minSamplesLeaf >= 1,
                     "forest settings out of range: \(settings)")
        // Each feature's rows in ascending order of value (ties by row), once for every tree.
        let sorted = columns.map { column in
            (0..<n).sorted { column[$0] < column[$1] || (column[$0] == column[$1] && $0 < $1) }
        }
        var trees: [RegressionTree] = []
        trees.reserveCapacity(settings.trees)
        var builder = TreeBuilder(columns: columns, y: y, settings: settings)
        for index in 0..<settings.trees {
            var generator = SeededGenerator(seed: seed, stream: index)
            var weights = [Double](repeating: 0, count: n)
            for _ in 0..<n { weights[Int(generator.next() % UInt64(n))] += 1 }
            trees.append(builder.grow(sorted: sorted, weights: weights, generator: &generator))
        }
        self.trees = trees
    }

    /// The mean prediction of the trees.
    public func predict(_ row: [Double]) -> Double {
        trees.reduce(0) { $0 + $1.predict(row) } / Double(trees.count)
    }
}

/// Grows one tree depth-first. Each node's rows sit in one range `start..<end` of every feature's
/// sorted list; a split partitions that range of every list stably, so the lists stay sorted and
/// no node sorts again.
private struct TreeBuilder {
    let columns: [[Double]]
    let y: [Double]
    let settings: RegressionForestSettings
    /// Per feature, the rows in the tree in ascending order of that feature: feature f's list is
    /// `order[f * m ..< (f + 1) * m]` for the tree's m rows.
    var order: [Int] = []
    var goesLeft: [Bool]
    var scratch: [Int] = []

    init(columns: [[Double]], y: [Double], settings: RegressionForestSettings) {
        self.columns = columns
        self.y = y
        self.settings = settings
        goesLeft = [Bool](repeating: false, count: y.count)
    }

    struct Split {
        var feature: Int
        var threshold: Double
        /// Rows going left: the first `leftCount` of the node's range in the feature's list.
        var leftCount: Int
        var proxy: Double
    }

    mutating func grow(sorted: [[Int]], weights: [Double], generator: inout SeededGenerator) -> RegressionTree {
        let d = columns.count
        let m = weights.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        order.removeAll(keepingCapacity: true)
        for f in 0..<d {
            for row in sorted[f] where weights[row] > 0 { order.append(row) }
        }
        var tree = RegressionTree()
        // (node, start, end, depth)
        var stack: [(Int, Int, Int, Int)] = []
        let root = tree.addNode(value: mean(start: 0, end: m, weights: weights))
        stack.append((root, 0, m, 0))
        var features = Array(0..<d)
        while let (node, start, end, depth) = stack.popLast() {
            guard end - start >= settings.minSamplesSplit, depth < settings.maxDepth, !constantTarget(start: start, end: end) else { continue }
            features.shuffle(using: &generator)
            guard let split = bestSplit(start: start, end: end, m: m, weights: weights, features: features) else { continue }
            partition(split, start: start, end: end, m: m)
            let middle = start + split.leftCount
            let leftNode = tree.addNode(value: mean(start: start, end: middle, weights: weights))
            let rightNode = tree.addNode(value: mean(start: middle, end: end, weights: weights))
            tree.feature[node] = split.feature
            tree.threshold[node] = split.threshold
            tree.left[node] = leftNode
            tree.right[node] = rightNode
            stack.append((rightNode, middle, end, depth + 1))
            stack.append((leftNode, start, middle, depth + 1))
        }
        return tree
    }

    /// The weighted mean target of the rows in `start..<end` (of any feature's list: the first's).
    func mean(start: Int, end: Int, weights: [Double]) -> Double {
        var sum = 0.0, total = 0.0
        for k in start..<end {
            let row = order[k]
            sum += weights[row] * y[row]
            total += weights[row]
        }
        return total > 0 ? sum / total : 0
    }

    func constantTarget(start: Int, end: Int) -> Bool {
        let first = y[order[start]]
        for k in start..<end where y[order[k]] != first { return false }
        return true
    }

    /// The split that most reduces the weighted squared error: the one with the largest
    /// `Σ_left(wy)²/Σ_left(w) + Σ_right(wy)²/Σ_right(w)`; the first found among equals.
    func bestSplit(start: Int, end: Int, m: Int, weights: [Double], features: [Int]) -> Split? {
        var totalWeight = 0.0, totalSum = 0.0
        for k in start..<end {
            let row = order[k]
            totalWeight += weights[row]
            totalSum += weights[row] * y[row]
        }
        let minLeaf = settings.minSamplesLeaf
        var best: Split?
        for f in features {
            let column = columns[f]
            let base = f * m
            guard column[order[base + end - 1]] > column[order[base + start]] + RegressionForest.featureTolerance else { continue }
            var leftWeight = 0.0, leftSum = 0.0
            for k in start..<(end - 1) {
                let row = order[base + k]
                leftWeight += weights[row]
                leftSum += weights[row] * y[row]
                let here = column[row], next = column[order[base + k + 1]]
                guard next > here + RegressionForest.featureTolerance else { continue }
                let leftCount = k - start + 1
                guard leftCount >= minLeaf, end - start - leftCount >= minLeaf else { continue }
                let rightWeight = totalWeight - leftWeight, rightSum = totalSum - leftSum
                let proxy = leftSum * leftSum / leftWeight + rightSum * rightSum / rightWeight
                if best == nil || proxy > best!.proxy {
                    var threshold = (here + next) / 2
                    if threshold == next || !threshold.isFinite { threshold = here }
                    best = Split(feature: f, threshold: threshold, leftCount: leftCount, proxy: proxy)
                }
            }
        }
        return best
    }

    /// Puts the split's left rows first in `start..<end` of every feature's list, each side in its
    /// former (sorted) order.
    mutating func partition(_ split: Split, start: Int, end: Int, m: Int) {
        let base = split.feature * m
        for k in start..<end { goesLeft[order[base + k]] = k - start < split.leftCount }
        for f in 0..<columns.count where f != split.feature {
            let offset = f * m
            scratch.removeAll(keepingCapacity: true)
            var write = offset + start
            for k in start..<end {
                let row = order[offset + k]
                if goesLeft[row] {
                    order[write] = row
                    write += 1
                } else {
                    scratch.append(row)
                }
            }
            for row in scratch {
                order[write] = row
                write += 1
            }
        }
    }
}
