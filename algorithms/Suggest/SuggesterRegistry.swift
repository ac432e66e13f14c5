/// Maps Katib algorithm names to suggesters.
public enum SuggesterRegistry {
    /// Algorithm name (and aliases) → suggester type.
    public static let types: [String: any Suggester.Type] = [
        "random": RandomSuggester.self,
        "grid": GridSuggester.self,
        "cmaes": CMAESSuggester.self,
        "bayesianoptimization": GPSuggester.self,
        "gp": GPSuggester.self,
        "sobol": SobolSuggester.self,
        "tpe": TPESuggester.self,
        "multivariate-tpe": MultivariateTPESuggester.self,
        "hyperband": HyperbandSuggester.self,
    ]

    /// Katib's algorithms that knob does not run, with why.
    public static let refused: [String: String] = [
        "pbt": "population-based training (pbt) is not supported: its trials would exchange checkpoints while they run",
        "enas": "neural architecture search (enas, darts) is not supported",
        "darts": "neural architecture search (enas, darts) is not supported",
    ]

    /// Why `name` names no algorithm, with `hint` (a "did you mean") when there is one, and the
    /// names that do.
    public static func unknownAlgorithmMessage(_ name: String, hint: String? = nil) -> String {
        let known = "known: \(names.joined(separator: ", "))"
        if let reason = refused[name] { return "algorithm \"\(name)\": \(reason); \(known)" }
        return "unknown algorithm \"\(name)\"; \(hint.map { "did you mean \($0)? " } ?? "")\(known)"
    }

    /// The algorithm names knob accepts, sorted.
    public static var names: [String] { types.keys.sorted() }

    /// A suggester for `algorithmName`, its settings checked.
    public static func make(_ algorithmName: String, context: SuggesterContext) throws -> any Suggester {
        guard let type = types[algorithmName] else { throw SuggesterError.unknownAlgorithm(algorithmName) }
        return try type.init(context: context)
    }
}

/// Reading `algorithmSettings` values with errors that name the setting.
public struct SettingsReader: Sendable {
    public let settings: [String: String]

    public init(_ settings: [String: String]) {
        self.settings = settings
    }

    /// Throws for any setting not in `known`.
    public func rejectUnknown(_ known: Set<String>, algorithm: String) throws {
        for name in settings.keys.sorted() where !known.contains(name) {
            let accepted = known.isEmpty ? "it takes no settings" : "it accepts \(known.sorted().joined(separator: ", "))"
            throw SuggesterError.invalidSetting(name: name, message: "not a setting of \(algorithm); \(accepted)")
        }
    }

    /// An integer setting in `range`, or `nil` when absent.
    public func int(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = settings[name] else { return nil }
        guard let value = Int(text.trimmingSpaces), range.contains(value) else {
            throw SuggesterError.invalidSetting(
                name: name, message: "\"\(text)\" is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// One of an enumeration's raw values (surrounding spaces ignored, case too when
    /// `ignoringCase`), or `nil` when absent.
    public func choice<Choice: RawRepresentable & CaseIterable>(_ name: String, ignoringCase: Bool = false) throws -> Choice?
    where Choice.RawValue == String {
        guard let text = settings[name] else { return nil }
        let trimmed = String(text.trimmingSpaces)
        guard let value = Choice(rawValue: ignoringCase ? trimmed.lowercased() : trimmed) else {
            let names = Choice.allCases.map(\.rawValue).joined(separator: ", ")
            throw SuggesterError.invalidSetting(name: name, message: "\"\(text)\" is not one of \(names)")
        }
        return value
    }

    /// A seed: any whole number that fits 64 bits.
    public func seed(_ name: String = "random_state") throws -> UInt64? {
        guard let text = settings[name] else { return nil }
        let trimmed = text.trimmingSpaces
        if let value = UInt64(trimmed) { return value }
        if let value = Int64(trimmed) { return UInt64(bitPattern: value) }
        throw SuggesterError.invalidSetting(name: name, message: "\"\(text)\" is not a whole number")
    }
}

extension String {
    var trimmingSpaces: Substring {
        let start = firstIndex(where: { !$0.isWhitespace }) ?? endIndex
        let end = lastIndex(where: { !$0.isWhitespace }).map(index(after:)) ?? start
        return self[start..<end]
    }
}
