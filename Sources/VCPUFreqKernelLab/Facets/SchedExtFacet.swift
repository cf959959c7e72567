import Foundation
import VCPUFreqBench

/// The sched_ext scheduler (issue 10) on this kernel: `vcpufreq scheduler
/// selftest`'s checks (load, placement from BPF host truth per CPU, additive
/// util, boosts, fairness, latency against EEVDF and EEVDF + slice, SIGKILL
/// and restart, sysrq eject, load / unload cycles, no watchdog eject), each
/// read back from the kernel. `absent` where the kernel has no usable
/// sched_ext and a daemon asked for it ran on saying why.
struct SchedExtFacet: KernelFacet {
    let name = "sched_ext"

    func run(in lab: KernelLab) throws -> FacetResult {
        // It starts its own daemons, kills one and ejects the scheduler: alone.
        lab.stopDefaultDaemon()
        var options = SchedSelftest.Options(executable: lab.executable)
        options.seconds = 1  // per window: the matrix has a time budget (bench sched measures longer)
        // Progress on the console (scripts/test-kernels shows `kernel-lab: ` lines): the facet takes a while under TCG.
        var selftest = SchedSelftest(options: options) { line in
            FileHandle.standardError.write(Data("kernel-lab: sched_ext \(line)\n".utf8))
        }
        let report = selftest.run()
        var check = FacetCheck()
        for item in report.checks {
            if item.passed {
                check.note("\(item.name): \(item.detail)")
            } else {
                check.fail("\(item.name): \(item.detail)")
            }
        }
        switch report.verdict {
        case .verified:
            return check.result()
        case .absent:
            check.note("sched_ext absent: \(report.reason ?? "-")")
            return check.result(absent: true)
        case .failed:
            if report.checks.allSatisfy(\.passed) { check.fail(report.reason ?? "the selftest failed") }
            return check.result()
        }
    }
}
