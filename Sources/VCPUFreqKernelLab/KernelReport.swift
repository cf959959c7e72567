import Foundation

/// A facet's verdict on one kernel (scripts/test-kernels, docs/kernels.md).
public enum FacetStatus: String, Codable, Sendable, CaseIterable {
    /// Asserted from the kernel's own state.
    case verified
    /// The kernel lacks it, and the daemon fell back as documented (checked).
    case absent
    /// An assertion failed, or the facet could not run to its end.
    case failed
    /// Not run on this kernel (not asked for, or no check exists yet).
    case notRun = "not_run"
}

/// What one facet found: its status and why (every failure, and what the
/// kernel lacks for `absent`).
public struct FacetResult: Codable, Equatable, Sendable {
    public var status: FacetStatus
    public var notes: [String]

    public init(_ status: FacetStatus, notes: [String] = []) {
        self.status = status
        self.notes = notes
    }
}

/// What the guest driver reports for one kernel: one JSON line on the
/// serial console after `marker`, which scripts/test-kernels collects.
public struct KernelReport: Codable, Equatable, Sendable {
    public var release: String
    public var facets: [String: FacetStatus]
    /// Per facet: failures, fallbacks, what was read back.
    public var notes: [String: [String]]
    /// The daemon's actuator plan on this kernel (`clamp=uclamp latency=slice affinity=on`).
    public var plan: String?
    /// Wall time of the driver in the guest, seconds.
    public var seconds: Double?
    /// The kernel's build options that decide the facets (`KernelConfig.options`), read on the host
    /// from the package's config: "y", "m" or "not set".
    public var config: [String: String]?

    public init(
        release: String, facets: [String: FacetStatus], notes: [String: [String]] = [:], plan: String? = nil,
        seconds: Double? = nil
    ) {
        self.release = release
        self.facets = facets
        self.notes = notes
        self.plan = plan
        self.seconds = seconds
    }

    /// The start of the console line that carries the report.
    public static let marker = "VCPUFREQ-KERNEL-LAB-REPORT "

    /// The console line: marker + compact JSON, keys sorted.
    public func consoleLine() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return Self.marker + json
    }

    /// The last report in a console log (serial lines end in \r\n); nil when there is none.
    public static func parse(consoleLog: String) -> KernelReport? {
        for line in consoleLog.split(whereSeparator: \.isNewline).reversed() {
            guard let range = line.range(of: marker) else { continue }
            let json = line[range.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
            if let report = try? JSONDecoder().decode(KernelReport.self, from: Data(json.utf8)) { return report }
        }
        return nil
    }

    /// A report for a kernel whose guest said nothing usable: every facet failed, with the reason.
    public static func failedRun(release: String, reason: String) -> KernelReport {
        var report = KernelReport(release: release, facets: [:])
        for name in KernelFacets.names {
            report.facets[name] = .failed
            report.notes[name] = [reason]
        }
        return report
    }

    public var anyFailed: Bool { facets.values.contains(.failed) }
}

/// The build options behind the facets, read from a kernel's config file.
public enum KernelConfig {
    public static let options = [
        "UCLAMP_TASK", "UCLAMP_TASK_GROUP", "CGROUP_SCHED", "SCHED_CLASS_EXT", "BPF_SYSCALL", "DEBUG_INFO_BTF",
    ]

    /// Each option of `options` as the config text sets it ("y", "m", or "not set").
    public static func parse(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard line.hasPrefix("CONFIG_"), let equals = line.firstIndex(of: "=") else { continue }
            let name = String(line[line.index(line.startIndex, offsetBy: 7)..<equals])
            if options.contains(name) { values[name] = String(line[line.index(after: equals)...]) }
        }
        for option in options where values[option] == nil { values[option] = "not set" }
        return values
    }
}

/// Every kernel of one run: the `--json FILE` document,
/// `{"kernels": [{"release": ..., "facets": {...}}, ...]}`.
public struct KernelMatrix: Codable, Equatable, Sendable {
    public var kernels: [KernelReport]

    public init(kernels: [KernelReport]) { self.kernels = kernels }

    /// Facet columns: the known facets in their order, then any other a report has.
    public var facetNames: [String] {
        let extra = Set(kernels.flatMap(\.facets.keys)).subtracting(KernelFacets.names).sorted()
        return KernelFacets.names + extra
    }

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return ((try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}") + "\n"
    }

    func status(_ report: KernelReport, _ facet: String) -> FacetStatus { report.facets[facet] ?? .notRun }

    /// The matrix as aligned text for a terminal.
    public func text() -> String {
        let names = facetNames
        let header = ["kernel"] + names
        let rows = kernels.map { report in [report.release] + names.map { status(report, $0).rawValue } }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        var text = ([line(header)] + rows.map(line)).joined(separator: "\n") + "\n"
        for report in kernels {
            for name in names where status(report, name) == .failed {
                let notes = report.notes[name] ?? []
                // A facet's own failures are marked; a run that failed as a whole has only its reason.
                let failures = notes.filter { $0.hasPrefix(FacetCheck.failurePrefix) }
                for note in failures.isEmpty ? notes : failures {
                    let reason = note.hasPrefix(FacetCheck.failurePrefix) ? String(note.dropFirst(FacetCheck.failurePrefix.count)) : note
                    text += "\(report.release) \(name) FAILED: \(reason)\n"
                }
            }
        }
        return text
    }

    /// The matrix and each kernel's notes as Markdown (docs/kernels.md).
    public func markdown() -> String {
        let names = facetNames
        var text = "| kernel | plan | " + names.joined(separator: " | ") + " |\n"
        text += "|---|---|" + String(repeating: "---|", count: names.count) + "\n"
        for report in kernels {
            let cells = names.map { status(report, $0).rawValue }
            text += "| \(report.release) | `\(report.plan ?? "?")` | " + cells.joined(separator: " | ") + " |\n"
        }
        let configured = kernels.filter { $0.config != nil }
        if !configured.isEmpty {
            text += "\nBuild options (from each package's config):\n\n| kernel | " + KernelConfig.options.map { "`\($0)`" }.joined(separator: " | ") + " |\n"
            text += "|---|" + String(repeating: "---|", count: KernelConfig.options.count) + "\n"
            for report in configured {
                text += "| \(report.release) | " + KernelConfig.options.map { report.config?[$0] ?? "?" }.joined(separator: " | ") + " |\n"
            }
        }
        for report in kernels {
            text += "\n**\(report.release)**\n\n"
            for name in names {
                let notes = report.notes[name] ?? []
                guard !notes.isEmpty else { continue }
                text += "- \(name) (\(status(report, name).rawValue)): " + notes.joined(separator: "; ") + "\n"
            }
        }
        return text
    }

    /// `document` with the text between the matrix markers replaced by `markdown()`;
    /// nil when the document has no markers.
    public func replacingMatrix(in document: String) -> String? {
        guard let begin = document.range(of: Self.beginMarker), let end = document.range(of: Self.endMarker),
            begin.upperBound <= end.lowerBound
        else { return nil }
        return String(document[..<begin.upperBound]) + "\n" + markdown() + String(document[end.lowerBound...])
    }

    public static let beginMarker = "<!-- kernel-matrix:begin (scripts/test-kernels writes this part) -->"
    public static let endMarker = "<!-- kernel-matrix:end -->"
}
