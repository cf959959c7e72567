import ArgumentParser
import Glibc
import VCPUFreqConfig
import VCPUFreqCore
import VCPUFreqLinux

struct TopologyProbe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Write a topology file describing this host (sysfs), with one VM mirroring it.",
        discussion: """
            Clusters are CPUs that share a cpufreq policy. Capacities come from cpu_capacity; where there is \
            none (x86), from acpi_cppc/highest_perf (intel_pstate) or the maximum frequency relative to the \
            fastest. Tables come from scaling_available_frequencies, else a ladder from cpuinfo_min_freq to \
            cpuinfo_max_freq in 100 MHz steps (at most 64 entries). On a host without cpufreq the table is \
            nominal (from /proc/cpuinfo "cpu MHz" when available) and marked nominal = true. Offline CPUs \
            nothing describes are left out. Notes go to stderr; docs/topology.md has the details.
            """
    )

    @Option(help: ArgumentHelp("Directory holding devices/system/cpu.", valueName: "dir"))
    var sysfsRoot: String = "/sys"

    @Option(help: ArgumentHelp("cpuinfo file for a nominal table (default: /proc/cpuinfo when probing /sys).", valueName: "file"))
    var cpuinfo: String?

    @Option(help: "Host name written to host.name (default: this machine's hostname).")
    var name: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the file here instead of stdout.", valueName: "file"))
    var output: String?

    func run() throws {
        let reader = SysfsReader(root: sysfsRoot, cpuinfoPath: cpuinfo ?? (sysfsRoot == "/sys" ? "/proc/cpuinfo" : nil))
        let snapshot: SysfsSnapshot
        do {
            snapshot = try reader.snapshot()
        } catch {
            throw CLIError(error.description)
        }
        let result = SysfsProbe.topology(from: snapshot, hostName: name ?? Self.hostname())
        for note in result.notes { printError("note: \(note)") }
        let header = ["Probed from \(reader.cpuDirectory) by `vcpufreq topology probe`."] + result.notes.map { "note: \($0)" }
        try writeOutput(TopologyFile.encode(result.topology, header: header), to: output)
    }

    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        let length = buffer.firstIndex(of: 0) ?? buffer.count
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
