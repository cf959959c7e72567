/// One problem found in a topology file or a trace, located by the key path
/// of the value (`host.cluster[1].frequencies_khz[3]`) and, when known, the
/// line of the file. The description is the message printed to operators.
public struct Diagnostic: Equatable, Sendable, CustomStringConvertible {
    public enum Severity: String, Equatable, Sendable {
        case error
        case warning
    }

    public var severity: Severity
    /// Dotted TOML key path of the offending value; empty for the whole file.
    public var keyPath: String
    public var message: String
    /// 1-based line in the source file, when the locator found it.
    public var line: Int?
    /// 1-based column, when known (TOML syntax errors: the parser reports it).
    public var column: Int?

    public init(_ severity: Severity, _ keyPath: String, _ message: String, line: Int? = nil, column: Int? = nil) {
        self.severity = severity
        self.keyPath = keyPath
        self.message = message
        self.line = line
        self.column = column
    }

    public static func error(_ keyPath: String, _ message: String, line: Int? = nil) -> Diagnostic {
        Diagnostic(.error, keyPath, message, line: line)
    }

    public static func warning(_ keyPath: String, _ message: String, line: Int? = nil) -> Diagnostic {
        Diagnostic(.warning, keyPath, message, line: line)
    }

    /// `error: host.cluster[1].capacity (line 9): capacity 2000 is outside 0...1024`
    public var description: String {
        var location = keyPath.isEmpty ? "" : keyPath
        if let line { location += location.isEmpty ? "line \(line)" : " (line \(line))" }
        return location.isEmpty ? "\(severity.rawValue): \(message)" : "\(severity.rawValue): \(location): \(message)"
    }
}

/// A topology that cannot be used; carries every problem found.
public struct TopologyError: Error, Equatable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics
    }

    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}

extension Array where Element == Diagnostic {
    public var hasErrors: Bool { contains { $0.severity == .error } }
}
