/// One problem in a spec: where it is and what is wrong.
public struct SpecProblem: Sendable, Hashable, CustomStringConvertible {
    /// Dotted path from the document root, e.g. `spec.parameters[1].feasibleSpace`.
    public var path: String
    public var message: String
    /// The line of the YAML document, when known.
    public var line: Int?

    public init(path: String, message: String, line: Int? = nil) {
        self.path = path
        self.message = message
        self.line = line
    }

    public var description: String {
        let location = line.map { " (line \($0))" } ?? ""
        return path.isEmpty ? "\(message)\(location)" : "\(path): \(message)\(location)"
    }
}

/// Every problem found in a spec.
public struct SpecError: Error, Sendable, CustomStringConvertible {
    public var problems: [SpecProblem]

    public init(_ problems: [SpecProblem]) {
        self.problems = problems
    }

    public var description: String {
        let count = problems.count == 1 ? "1 problem" : "\(problems.count) problems"
        return "the spec has \(count):\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}
