import ArgumentParser
import Foundation
import VCPUFreqKernelLab

/// The guest driver of scripts/test-kernels (docs/kernels.md): `guest` runs
/// the facets against the real daemon and prints the report line; `report`
/// turns the guests' console logs into the matrix; `vmm` is the VMM child
/// the restore facet kills.
@main
struct KernelLabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcpufreq-kernel-lab",
        abstract: "Check the daemon's actuators on the running kernel, and report the kernel matrix.",
        subcommands: [Guest.self, Report.self, VMMChild.self]
    )
}
