import ArgumentParser
import VCPUFreqBPF
import VCPUFreqServer

/// The scheduler's knobs, shared by `serve --scheduler sched-ext` and
/// `scheduler run` (docs/scheduler.md).
struct SchedulerTuningOptions: ParsableArguments {
    @Option(name: .customLong("scheduler-slice-us"), help: "sched_ext: every task's slice, µs (100...100000).")
    var sliceMicroseconds: UInt32 = SchedulerSettings().sliceMicroseconds

    @Option(
        name: .customLong("scheduler-boost-us"),
        help: "sched_ext: longest boost of a latency-flagged vCPU, µs; 0 = the hint's slice (the VM policy's latency_slice_us).")
    var boostMicroseconds: UInt32 = SchedulerSettings().boostMicroseconds

    @Option(
        name: .customLong("scheduler-boost-share"),
        help: "sched_ext: share of wall time a vCPU may run boosted, per mille (boost credit refill; 0...1000).")
    var boostSharePermille: UInt32 = SchedulerSettings().boostSharePermille

    func validate() throws {
        if let problem = settings.problem { throw ValidationError("--scheduler-*: \(problem)") }
    }

    var settings: SchedulerSettings {
        var settings = SchedulerSettings()
        settings.sliceMicroseconds = sliceMicroseconds
        settings.boostMicroseconds = boostMicroseconds
        settings.boostSharePermille = boostSharePermille
        return settings
    }
}

/// `vcpufreq serve`'s choice of host scheduler.
struct ServeSchedulerOptions: ParsableArguments {
    @Option(
        help: """
            Host scheduler to load once the daemon is up: none (the kernel's) or sched-ext (bpf/vcpufreq_sched.bpf.c, \
            placing vCPU threads by their hints; needs a sched_ext kernel, else the daemon says why and runs on).
            """)
    var scheduler = ServerConfiguration.SchedulerOptions.Kind.none.rawValue

    @OptionGroup var tuning: SchedulerTuningOptions

    func validate() throws {
        guard ServerConfiguration.SchedulerOptions.Kind(rawValue: scheduler) != nil else {
            throw ValidationError("--scheduler: \"\(scheduler)\" is not one of none, sched-ext")
        }
    }

    var options: ServerConfiguration.SchedulerOptions {
        ServerConfiguration.SchedulerOptions(kind: .init(rawValue: scheduler) ?? .none, settings: tuning.settings)
    }
}
