import Foundation
import VCPUFreqBenchSupport

/// Writes a run as workload.json (everything), workload.md (the tables,
/// findings and notes) and workload.svg (bars per test with intervals), and
/// reads the JSON back (`--from`, the tests).
public enum WorkloadResultsFiles {
    public static let baseName = "workload"

    @discardableResult
    public static func write(_ results: WorkloadResults, to directory: String) throws(WorkloadBenchError) -> [String] {
        do {
            var markdown = WorkloadReport.markdown(results)
            markdown += "![score per test](\(baseName).svg)\n"
            return try ResultsFiles.write(
                ResultsFiles.Run(
                    baseName: baseName, json: ResultsFiles.encode(results), markdown: markdown,
                    svg: WorkloadChart.svg(results)),
                to: directory)
        } catch {
            throw .output("\(directory): \(error)")
        }
    }

    public static func read(_ path: String) throws(WorkloadBenchError) -> WorkloadResults {
        do {
            return try ResultsFiles.decode(WorkloadResults.self, from: path)
        } catch {
            throw .output("cannot read \(path): \(error)")
        }
    }
}
