import ArgumentParser
import Foundation
import VCPUFreqCore

struct TopologyPolicies: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policies",
        abstract: "Print, as JSON, the cpufreq policies a guest's virtual-cpufreq driver builds for a VM profile.",
        discussion: """
            Derived from the topology alone: per policy its CPU, related CPUs, domain, \
            frequency table (null in max-only mode) and cpuinfo limits — what the guest's \
            /sys/devices/system/cpu/cpufreq/policyN must show.
            """
    )

    @OptionGroup var options: TopologyFileOptions

    struct Document: Encodable {
        var vm: String
        var vcpus: Int
        var tableMode: String
        var policies: [GuestPolicy]

        enum CodingKeys: String, CodingKey {
            case vm, vcpus, policies
            case tableMode = "table_mode"
        }
    }

    func run() throws {
        let topology = try options.load()
        let profile = topology.profile(named: options.vm)
        do {
            let document = Document(
                vm: profile?.name ?? "", vcpus: profile?.vcpuCount ?? 0, tableMode: profile?.tableMode.rawValue ?? "",
                policies: try topology.guestPolicies(forVM: options.vm))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(document), as: UTF8.self))
        } catch let error as TopologyError {
            throw CLIError(error.description)
        }
    }
}
