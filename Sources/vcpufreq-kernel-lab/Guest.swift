import ArgumentParser
import Foundation
import VCPUFreqKernelLab

struct Guest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guest",
        abstract: "Run the facets on this kernel (as root) and print the report line.",
        discussion: "The report is one line on stdout: \(KernelReport.marker.trimmingCharacters(in: .whitespaces)) {json}."
    )

    @Option(help: "The vcpufreq binary whose daemon is checked.")
    var vcpufreq: String

    @Option(name: .customLong("work-dir"), help: "Scratch directory (sockets, logs, journals).")
    var workDirectory = "/tmp/kernel-lab"

    @Option(name: .customLong("facet"), help: "Run only this facet (repeatable); the others are not_run.")
    var facets: [String] = []

    @Option(help: "Also write the report line to this file.")
    var output: String?

    func validate() throws {
        let known = KernelFacets.all.map(\.name)
        for facet in facets where !known.contains(facet) {
            throw ValidationError("--facet: \"\(facet)\" is not one of \(known.joined(separator: ", "))")
        }
    }

    func run() throws {
        let start = Date()
        let release = (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var report = KernelReport(release: release, facets: [:])
        for name in KernelFacets.names { report.facets[name] = .notRun }
        do {
            let lab = try KernelLab(executable: vcpufreq, labExecutable: exe, workDirectory: workDirectory)
            report.plan = try? lab.defaultStatus().actuators
            for facet in KernelFacets.all where facets.isEmpty || facets.contains(facet.name) {
                let began = Date()
                let result: FacetResult
                do { result = try facet.run(in: lab) } catch { result = FacetResult(.failed, notes: [FacetCheck.failurePrefix + "\(error)"]) }
                report.facets[facet.name] = result.status
                report.notes[facet.name] = result.notes
                FileHandle.standardError.write(Data(
                    "kernel-lab: \(facet.name) \(result.status.rawValue) (\(String(format: "%.1f", Date().timeIntervalSince(began))) s)\n".utf8))
            }
            lab.stopDefaultDaemon()
        } catch {
            report = KernelReport.failedRun(release: release, reason: "\(error)")
        }
        report.seconds = (Date().timeIntervalSince(start) * 10).rounded() / 10
        let line = report.consoleLine()
        print(line)
        if let output { try (line + "\n").write(toFile: output, atomically: true, encoding: .utf8) }
    }
}
