import Foundation

/// A chart drawn with characters: points and lines on a grid, a y axis with its range and an x
/// axis with its ends, and a legend; at most `width` columns wide.
struct TextChart {
    /// How a series is drawn.
    enum Style {
        /// Each point as its symbol.
        case points
        /// Points joined by straight lines (`·`), each point as its symbol.
        case line
        /// A step line (`─`): each value holds until the next point.
        case steps
    }

    struct Series {
        var label: String
        var symbol: Character
        var style: Style
        var points: [(x: Double, y: Double)]
    }

    var series: [Series]
    var xLabel: String

    /// The chart's lines, each at most `width` characters; the plot area is `height` rows.
    func render(width: Int, height: Int) -> [String] {
        let points = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        guard !points.isEmpty else { return ["(nothing to draw yet)"] }
        let rows = max(3, height)
        var (yMin, yMax) = (points.map(\.y).min()!, points.map(\.y).max()!)
        if yMin == yMax {
            let pad = yMin == 0 ? 1 : abs(yMin) * 0.1
            (yMin, yMax) = (yMin - pad, yMax + pad)
        }
        let (xMin, xMax) = (points.map(\.x).min()!, points.map(\.x).max()!)
        // The y axis's labels: the top, the middle and the bottom of the range.
        let labels = [yMax, (yMin + yMax) / 2, yMin].map { String(format: "%.4g", $0) }
        let labelWidth = labels.map(\.count).max()!
        let columns = max(10, width - labelWidth - 2)

        func column(_ x: Double) -> Int {
            xMax == xMin ? columns / 2 : Int(((x - xMin) / (xMax - xMin) * Double(columns - 1)).rounded())
        }
        func row(_ y: Double) -> Int {
            Int(((yMax - y) / (yMax - yMin) * Double(rows - 1)).rounded())
        }

        var grid = Array(repeating: Array(repeating: Character(" "), count: columns), count: rows)
        func mark(_ r: Int, _ c: Int, _ symbol: Character, over: Bool) {
            guard grid.indices.contains(r), grid[r].indices.contains(c), over || grid[r][c] == " " else { return }
            grid[r][c] = symbol
        }
        // Lines first, points over them.
        for series in series {
            let drawn = series.points.filter { $0.x.isFinite && $0.y.isFinite }.sorted { $0.x < $1.x }
            for (a, b) in zip(drawn, drawn.dropFirst()) {
                let (c0, c1) = (column(a.x), column(b.x))
                switch series.style {
                case .points:
                    break
                case .steps:
                    for c in c0..<max(c0, c1) { mark(row(a.y), c, "─", over: false) }
                case .line:
                    guard c1 > c0 else { continue }
                    for c in c0...c1 {
                        let y = a.y + (b.y - a.y) * Double(c - c0) / Double(c1 - c0)
                        mark(row(y), c, "·", over: false)
                    }
                }
            }
            if series.style == .steps, let last = drawn.last { mark(row(last.y), column(last.x), "─", over: false) }
        }
        for series in series where series.style != .steps {
            for point in series.points where point.x.isFinite && point.y.isFinite {
                mark(row(point.y), column(point.x), series.symbol, over: true)
            }
        }

        var lines: [String] = []
        for (index, cells) in grid.enumerated() {
            let label = index == 0 ? labels[0] : index == rows - 1 ? labels[2] : index == (rows - 1) / 2 ? labels[1] : ""
            let padded = String(repeating: " ", count: labelWidth - label.count) + label
            lines.append((padded + " │" + String(cells)).replacingOccurrences(of: #" +$"#, with: "", options: .regularExpression))
        }
        lines.append(String(repeating: " ", count: labelWidth) + " └" + String(repeating: "─", count: columns))
        let (left, right) = (String(format: "%.6g", xMin), String(format: "%.6g", xMax))
        let gap = max(1, columns - left.count - right.count - xLabel.count)
        let axis = left + String(repeating: " ", count: gap / 2) + xLabel + String(repeating: " ", count: gap - gap / 2) + (xMax == xMin ? "" : right)
        lines.append(String(repeating: " ", count: labelWidth + 2) + axis)
        let legend = series.map { "\($0.style == .steps ? "─" : String($0.symbol)) \($0.label)" }.joined(separator: "   ")
        lines.append(String(repeating: " ", count: labelWidth + 2) + legend)
        return lines.map { fitted($0, width: width) }
    }
}
