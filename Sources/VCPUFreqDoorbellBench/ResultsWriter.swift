import Foundation
import VCPUFreqBenchSupport

/// Writes a run as `doorbell.json` (everything, samples included),
/// `doorbell.md` (the tables and findings) and `doorbell.svg` (the CDFs)
/// into a directory, creating it if needed.
public enum ResultsWriter {
    public static let baseName = "doorbell"

    /// Returns the paths written.
    @discardableResult
    public static func write(_ results: DoorbellResults, to directory: String) throws(BenchError) -> [String] {
        do {
            return try ResultsFiles.write(
                ResultsFiles.Run(
                    baseName: baseName, json: ResultsFiles.encode(results),
                    markdown: Report.markdown(results, chartFile: "\(baseName).svg"), svg: LatencyChart.svg(results)),
                to: directory)
        } catch {
            throw .output("\(directory): \(error)")
        }
    }

    /// Reads a `doorbell.json` back (the README updater and the tests).
    public static func read(_ path: String) throws(BenchError) -> DoorbellResults {
        do {
            return try ResultsFiles.decode(DoorbellResults.self, from: path)
        } catch {
            throw .output("cannot read \(path): \(error)")
        }
    }
}
