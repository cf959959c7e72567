import Foundation
import Testing
import VCPUFreqKernelLab
import VCPUFreqLinux

/// The guest driver of scripts/test-kernels run on this host's own kernel,
/// as root: the same facets against the real daemon, so a broken check shows
/// here before a QEMU guest boots. This host (see host-notes) has no uclamp
/// and no cgroup v2 cpu controller: those facets must say absent, with the
/// daemon's fallback checked; everything else verified.
@Suite(.enabled(if: geteuid() == 0, "the facets change thread attributes and load BPF: run the tests as root"))
struct HostLabTests {
    static var buildDirectory: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        let here = URL(fileURLWithPath: exe).deletingLastPathComponent().path
        if FileManager.default.isExecutableFile(atPath: here + "/vcpufreq-kernel-lab") { return here }
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/") + "/.build/debug"
    }

    @Test func everyFacetOnThisKernel() throws {
        let work = NSTemporaryDirectory() + "kernel-lab-test-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let output = work + ".log"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let child = try ChildProcess(
            [Self.buildDirectory + "/vcpufreq-kernel-lab", "guest", "--vcpufreq", Self.buildDirectory + "/vcpufreq", "--work-dir", work],
            outputPath: output)
        let ended = child.wait(timeout: .seconds(180))
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(ended == .exited(0), "\(String(describing: ended)): \(log)")
        let report = try #require(KernelReport.parse(consoleLog: log), "no report line: \(log)")
        let release = (try String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(report.release == release)
        for name in ["slice", "nice", "affinity", "bpf", "restore"] {
            #expect(report.facets[name] == .verified, "\(name): \(report.notes[name] ?? [])")
        }
        // Detect, don't assume: what this kernel has decides verified or absent.
        let hasUclamp = FileManager.default.fileExists(atPath: "/proc/sys/kernel/sched_util_clamp_min")
        #expect(report.facets["uclamp"] == (hasUclamp ? .verified : .absent), "\(report.notes["uclamp"] ?? [])")
        #expect([.verified, .absent].contains(report.facets["cgroup_uclamp"]), "\(report.notes["cgroup_uclamp"] ?? [])")
        // sched_ext: absent without /sys/kernel/sched_ext (this machine), after the daemon asked for it said why.
        let hasSchedExt = FileManager.default.fileExists(atPath: "/sys/kernel/sched_ext")
        #expect(report.facets["sched_ext"] == (hasSchedExt ? .verified : .absent), "\(report.notes["sched_ext"] ?? [])")
        #expect(!report.anyFailed)
    }
}
