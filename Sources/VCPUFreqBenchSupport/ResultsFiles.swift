import Foundation

/// Writes one run's files — JSON for scripts, Markdown for people, an SVG
/// chart where the benchmark draws one — into a directory (created if
/// needed), each atomically, and reads the JSON back.
public enum ResultsFiles {
    /// The files of a run: `name.json`, `name.md` and, when given, `name.svg`.
    public struct Run {
        public var baseName: String
        public var json: Data
        public var markdown: String
        public var svg: String?

        public init(baseName: String, json: Data, markdown: String, svg: String? = nil) {
            self.baseName = baseName
            self.json = json
            self.markdown = markdown
            self.svg = svg
        }
    }

    /// The encoding every benchmark writes: pretty-printed, keys sorted (diffable).
    public static func encode<Value: Encodable>(_ value: Value) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(value)
    }

    public static func decode<Value: Decodable>(_ type: Value.Type, from path: String) throws -> Value {
        try JSONDecoder().decode(type, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Writes `run` into `directory`; returns the paths written: Markdown, JSON, SVG.
    @discardableResult
    public static func write(_ run: Run, to directory: String) throws -> [String] {
        let markdown = directory + "/\(run.baseName).md"
        let json = directory + "/\(run.baseName).json"
        let svg = directory + "/\(run.baseName).svg"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try run.json.write(to: URL(fileURLWithPath: json), options: .atomic)
        try run.markdown.write(toFile: markdown, atomically: true, encoding: .utf8)
        guard let chart = run.svg else { return [markdown, json] }
        try chart.write(toFile: svg, atomically: true, encoding: .utf8)
        return [markdown, json, svg]
    }
}

/// A section of a README between two marker comments that a benchmark
/// rewrites with its latest table (`--readme FILE`).
public struct ReadmeSection: Sendable {
    public let begin: String
    public let end: String

    public init(begin: String, end: String) {
        self.begin = begin
        self.end = end
    }

    /// `readme` with the text between the markers replaced by `section`;
    /// nil when the markers are missing or out of order.
    public func replacing(in readme: String, with section: String) -> String? {
        guard let first = readme.range(of: begin), let last = readme.range(of: end),
            first.upperBound <= last.lowerBound
        else { return nil }
        return String(readme[..<first.upperBound]) + "\n" + section + String(readme[last.lowerBound...])
    }

    /// Replaces the section of the file at `path` in place.
    /// - Throws: a message naming the file when it cannot be read or has no markers.
    public func update(file path: String, with section: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ReadmeSectionError("cannot read \(path)")
        }
        guard let updated = replacing(in: text, with: section) else {
            throw ReadmeSectionError("\(path) has no \(begin) … \(end) section to replace")
        }
        try updated.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// Why a README section could not be replaced: the message.
public struct ReadmeSectionError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
