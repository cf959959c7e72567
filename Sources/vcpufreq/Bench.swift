import ArgumentParser

/// `vcpufreq bench`: the benchmarks, one subcommand each (bench/README.md
/// describes every one and how to rerun it).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure vcpufreq: the daemon under load, the request paths, guest workloads (see bench/README.md).",
        subcommands: subcommands
    )

    /// One entry per benchmark; add new ones here.
    static let subcommands: [ParsableCommand.Type] = [
        BenchDaemon.self,
        BenchBPF.self,
        BenchDoorbell.self,
        BenchSCMI.self,
        BenchSched.self,
        BenchWorkload.self,
    ]
}
