import ArgumentParser
import Foundation
import VCPUFreqKernelLab

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Collect the guests' reports into the matrix; exit 1 when a facet failed.",
        discussion: "Each argument is KERNEL=CONSOLE-LOG; a log without a report line fails every facet of that kernel."
    )

    @Option(help: "Write the matrix as JSON to this file.")
    var json: String?

    @Option(help: "Rewrite the matrix between the markers of this Markdown file (docs/kernels.md).")
    var markdown: String?

    @Option(name: .customLong("config"), help: "KERNEL=CONFIG-FILE: the kernel's build options for the docs (repeatable).")
    var configs: [String] = []

    @Argument(help: "KERNEL=CONSOLE-LOG, one per kernel.")
    var logs: [String]

    func validate() throws {
        for log in logs where !log.contains("=") { throw ValidationError("\"\(log)\" is not KERNEL=CONSOLE-LOG") }
        for config in configs where !config.contains("=") { throw ValidationError("--config: \"\(config)\" is not KERNEL=CONFIG-FILE") }
    }

    func run() throws {
        var reports: [KernelReport] = []
        for argument in logs {
            let kernel = String(argument.prefix { $0 != "=" })
            let path = String(argument.drop { $0 != "=" }.dropFirst())
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                reports.append(.failedRun(release: kernel, reason: "no console log at \(path)"))
                continue
            }
            if var report = KernelReport.parse(consoleLog: text) {
                if let config = configs.first(where: { $0.hasPrefix(kernel + "=") }),
                    let configText = try? String(contentsOfFile: String(config.dropFirst(kernel.count + 1)), encoding: .utf8)
                {
                    report.config = KernelConfig.parse(configText)
                }
                reports.append(report)
            } else {
                let tail = text.split(whereSeparator: \.isNewline).suffix(5).joined(separator: " | ")
                reports.append(.failedRun(release: kernel, reason: "the guest printed no report (console: \(tail))"))
            }
        }
        let matrix = KernelMatrix(kernels: reports)
        print(matrix.text(), terminator: "")
        if let json { try matrix.json().write(toFile: json, atomically: true, encoding: .utf8) }
        if let markdown {
            guard let document = try? String(contentsOfFile: markdown, encoding: .utf8) else {
                throw ValidationError("--markdown: cannot read \(markdown)")
            }
            guard let updated = matrix.replacingMatrix(in: document) else {
                throw ValidationError("--markdown: \(markdown) has no \(KernelMatrix.beginMarker) ... \(KernelMatrix.endMarker) markers")
            }
            try updated.write(toFile: markdown, atomically: true, encoding: .utf8)
        }
        // The plain closing line test runners print: verified and absent (a checked fallback) pass.
        let statuses = reports.flatMap { report in matrix.facetNames.map { report.facets[$0] ?? .notRun } }
        print("kernels: \(statuses.filter { $0 == .verified || $0 == .absent }.count) passed, "
            + "\(statuses.filter { $0 == .failed }.count) failed, \(statuses.filter { $0 == .notRun }.count) skipped")
        if reports.contains(where: \.anyFailed) { throw ExitCode(1) }
    }
}
