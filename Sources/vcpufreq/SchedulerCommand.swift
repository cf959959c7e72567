import ArgumentParser

/// `vcpufreq scheduler`: the sched_ext scheduler without the daemon (docs/scheduler.md).
struct SchedulerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler",
        abstract: "Run the sched_ext scheduler standalone, or test it on this kernel.",
        subcommands: [SchedulerRun.self, SchedulerSelftest.self]
    )
}
