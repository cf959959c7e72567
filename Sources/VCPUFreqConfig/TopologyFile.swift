import Glibc
import TOMLKit
import VCPUFreqCore

/// The human-edited topology file (TOML; reference in docs/topology.md).
///
/// `decode` reports every problem of a file at once — TOML syntax, wrong
/// types, unknown keys, then everything `Topology.check()` finds — each
/// with its key path and line, so an operator fixes a file in one pass.
public enum TopologyFile {
    /// Decodes and checks topology file text.
    ///
    /// - Returns: the topology when there is no error (warnings allowed),
    ///   and every diagnostic in line order (those without a line last).
    public static func decode(_ text: String) -> (topology: Topology?, diagnostics: [Diagnostic]) {
        let locator = LineLocator(source: text)
        if let refused = locator.abortsTOMLKit { return (nil, [refused]) }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let begin = error.source.begin
            return (nil, [Diagnostic(.error, "", error.description, line: begin.line, column: begin.column)])
        } catch {
            return (nil, [.error("", "\(error)")])
        }
        var decoder = TopologyDecoder()
        let topology = decoder.decode(root)
        let failed = decoder.fields.failedPaths
        let consequences = topology.check().filter { finding in
            !failed.contains { Self.isRelated(finding.keyPath, $0) }
        }
        var diagnostics = (decoder.fields.diagnostics + consequences).map { diagnostic in
            var located = diagnostic
            if located.line == nil { located.line = locator.line(of: diagnostic.keyPath) }
            return located
        }
        diagnostics = stableSortedByLine(diagnostics)
        return (diagnostics.hasErrors ? nil : topology, diagnostics)
    }

    /// Reads, decodes and checks the file at `path`.
    ///
    /// - Returns: the topology and its warnings.
    /// - Throws: `TopologyFileError.unreadable` or `.invalid` (with every diagnostic).
    public static func load(path: String) throws(TopologyFileError) -> (topology: Topology, warnings: [Diagnostic]) {
        let text = try readText(path: path)
        let (topology, diagnostics) = decode(text)
        guard let topology else { throw .invalid(path: path, diagnostics: diagnostics) }
        return (topology, diagnostics)
    }

    /// `file:line:column: error: key.path: message`, the form compilers use,
    /// so editors and terminals can jump to the line.
    public static func format(_ diagnostic: Diagnostic, file: String) -> String {
        var location = file
        if let line = diagnostic.line {
            location += ":\(line)"
            if let column = diagnostic.column { location += ":\(column)" }
        }
        let key = diagnostic.keyPath.isEmpty ? "" : "\(diagnostic.keyPath): "
        return "\(location): \(diagnostic.severity.rawValue): \(key)\(diagnostic.message)"
    }

    /// The whole file as UTF-8 text (invalid bytes become U+FFFD and then a TOML error).
    public static func readText(path: String) throws(TopologyFileError) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .unreadable(path: path, reason: Self.errnoText()) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, reason: Self.errnoText())
            }
            bytes.append(contentsOf: chunk[0..<count])
            guard bytes.count <= maximumFileBytes else {
                throw .unreadable(path: path, reason: "larger than \(maximumFileBytes / 1_048_576) MiB")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A topology file for 1024 vCPUs with per-vCPU pin sets is tens of KiB;
    /// refusing anything past 16 MiB keeps a wrong path (a disk image) from
    /// being read into memory.
    public static let maximumFileBytes = 16 * 1_048_576

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }

    /// True when one key path is the other or lies inside it.
    static func isRelated(_ a: String, _ b: String) -> Bool {
        func inside(_ inner: String, _ outer: String) -> Bool {
            inner == outer || inner.hasPrefix(outer + ".") || inner.hasPrefix(outer + "[")
        }
        return inside(a, b) || inside(b, a)
    }

    private static func stableSortedByLine(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        diagnostics.enumerated().sorted { left, right in
            let l = left.element.line ?? Int.max, r = right.element.line ?? Int.max
            return l != r ? l < r : left.offset < right.offset
        }.map(\.element)
    }
}

/// Why a topology file could not be used; the description is the message.
public enum TopologyFileError: Error, CustomStringConvertible {
    /// `cannot read FILE: reason`
    case unreadable(path: String, reason: String)
    /// The file has errors; every diagnostic, formatted `file:line: error: key: message`.
    case invalid(path: String, diagnostics: [Diagnostic])

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .invalid(let path, let diagnostics):
            return diagnostics.map { TopologyFile.format($0, file: path) }.joined(separator: "\n")
        }
    }
}
