import Foundation

/// Writes a run as `doorbell.json` (everything, samples included),
/// `doorbell.md` (the tables and findings) and `doorbell.svg` (the CDFs)
/// into a directory, creating it if needed.
public enum ResultsWriter {
    public static let baseName = "doorbell"

    /// Returns the paths written.
    @discardableResult
    public static func write(_ results: DoorbellResults, to directory: String) throws(BenchError) -> [String] {
        let json = directory + "/\(baseName).json"
        let markdown = directory + "/\(baseName).md"
        let svg = directory + "/\(baseName).svg"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(results).write(to: URL(fileURLWithPath: json), options: .atomic)
            try Report.markdown(results, chartFile: "\(baseName).svg").write(toFile: markdown, atomically: true, encoding: .utf8)
            try LatencyChart.svg(results).write(toFile: svg, atomically: true, encoding: .utf8)
        } catch {
            throw .output("\(directory): \(error)")
        }
        return [markdown, json, svg]
    }

    /// Reads a `doorbell.json` back (the README updater and the tests).
    public static func read(_ path: String) throws(BenchError) -> DoorbellResults {
        do {
            let decoder = JSONDecoder()
            return try decoder.decode(DoorbellResults.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw .output("cannot read \(path): \(error)")
        }
    }
}
