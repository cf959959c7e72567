import Foundation
import Testing
import VCPUFreqCore
import VCPUFreqTestSupport

/// `vcpufreq vmm` as the README's main command calls it: its own daemon from
/// a topology file, a report, a clean stop — and a distinct exit status
/// when KVM is unusable, so a caller can fall back.
struct VMMCommand {
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `vcpufreq arguments…` to completion.
    static func run(_ arguments: [String]) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: vcpufreqExecutable())
        process.arguments = arguments
        let run = try ProgramOutput.of(process)
        return Outcome(status: run.status, stdout: run.standardOutput, stderr: run.standardError)
    }

    /// The test topology in a file of its own.
    static func topologyFile() throws -> String {
        let path = NSTemporaryDirectory() + "vcpufreq-vmm-cli-\(UUID().uuidString).toml"
        try TestTopology.text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

/// Runs everywhere: on a machine without /dev/kvm this is the path taken.
@Suite struct VMMCommandWithoutKVMTests {
    /// Exit status 69 (EX_UNAVAILABLE) and the reason, before any daemon starts.
    @Test func withoutAUsableKVMDeviceItSaysWhyAndExits69() throws {
        let topology = try VMMCommand.topologyFile()
        defer { try? FileManager.default.removeItem(atPath: topology) }
        let outcome = try VMMCommand.run(["vmm", "--topology", topology, "--kvm-device", "/nonexistent/kvm"])
        #expect(outcome.status == 69)
        #expect(outcome.stderr.contains("KVM device /nonexistent/kvm does not exist"))
        #expect(outcome.stdout.isEmpty)
    }
}

extension EndToEnd {
    @Suite struct VMMCommandTests {
        @Test func withoutADaemonItSaysHowToStartOne() throws {
            let outcome = try VMMCommand.run(["vmm", "--socket", "/nonexistent/vcpufreq.sock", "--vcpus", "2"])
            #expect(outcome.status == 1)
            #expect(outcome.stderr.contains("no vcpufreq daemon at /nonexistent/vcpufreq.sock"))
            #expect(outcome.stderr.contains("vcpufreq serve"))
        }

        /// Its own daemon, the probe program: the tables the guest read, one
        /// policy per domain, the threads restored, the daemon stopped.
        @Test func withATopologyItRunsItsOwnDaemonAndReportsTheProbe() throws {
            let topology = try VMMCommand.topologyFile()
            defer { try? FileManager.default.removeItem(atPath: topology) }
            let outcome = try VMMCommand.run(["vmm", "--topology", topology, "--profile", "quad", "--script", "probe"])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let profile = TestTopology.profile("quad")
            for vcpu in [0, 2] {
                let table = TestTopology.expectedTable(profile, vcpu: vcpu).map(String.init).joined(separator: " ")
                #expect(outcome.stdout.contains("\(table) kHz"), "\(outcome.stdout)")
            }
            #expect(outcome.stdout.contains("policy of cpu 0: cpus 0,1, perf_domain 7"))
            #expect(outcome.stdout.contains("policy of cpu 2: cpus 2,3, perf_domain 3"))
            #expect(outcome.stdout.contains("restored 4 vCPU threads"))
            #expect(outcome.stdout.contains("our daemon (pid"))
        }

        /// The demo program end to end on the kicks-always profile: every
        /// phase reported (compact and per vCPU), the latency-sensitive vCPU 0
        /// ends with a slice.
        @Test(arguments: [false, true])
        func theDemoReportsEveryPhaseAndTheAppliedHints(perVCPU: Bool) throws {
            let topology = try VMMCommand.topologyFile()
            defer { try? FileManager.default.removeItem(atPath: topology) }
            let outcome = try VMMCommand.run(
                ["vmm", "--topology", topology, "--profile", "duo", "--vm-name", "demo-vm"] + (perVCPU ? ["--per-vcpu"] : []))
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let phases = perVCPU
                ? ["set_perf: an MMIO exit each", "cur_perf on every tick", "cur_freq (util-hint window",
                   "util_hint: an MMIO exit each", "shared page: one request every 2 ms", "shared page: a burst"]
                : ["\n  set_perf ", "\n  cur_perf ticks ", "\n  cur_freq reads ", "\n  util_hint ", "\n  publish, spaced ",
                   "\n  publish, burst "]
            for phase in phases { #expect(outcome.stdout.contains(phase), "missing phase \(phase)") }
            #expect(outcome.stdout.contains("VM \"demo-vm\" (profile duo, 2 vCPUs"))
            #expect(outcome.stdout.contains("cur_perf ×100000 (mirror)"))
            #expect(outcome.stdout.contains(perVCPU ? "exits of the whole run, per vCPU (by reason)" : "exits per vCPU: "))
            let vcpu0 = outcome.stdout.split(separator: "\n").first { $0.contains("shared_page util 299 latency") }
            #expect(vcpu0?.contains("slice=300us") == true, "\(outcome.stdout)")
            #expect(!outcome.stdout.contains("failed"))
        }

        @Test func misbehaveShowsTheInvalidAccessesTheDaemonCounted() throws {
            let topology = try VMMCommand.topologyFile()
            defer { try? FileManager.default.removeItem(atPath: topology) }
            let outcome = try VMMCommand.run(["vmm", "--topology", topology, "--profile", "duo", "--script", "misbehave"])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            // Nine invalid accesses per vCPU, two vCPUs (ProgramRunner's list, classified by docs/abi.md).
            let line = outcome.stdout.split(separator: "\n").first { $0.hasPrefix("invalid accesses the daemon counted") }
            let expected = [
                "bad_width 2", "beyond_last_vcpu 2", "performance_above_max 2", "performance_zero 2",
                "read_of_write_only 2", "unaligned 2", "unmapped 2", "utilization_above_max 2", "write_to_read_only 2",
            ]
            #expect(line.map(String.init) == "invalid accesses the daemon counted: " + expected.joined(separator: ", "))
        }
    }
}
