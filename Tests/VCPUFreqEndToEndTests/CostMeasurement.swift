import Foundation
import Testing
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqVMM

/// What each way of talking to the daemon costs the guest, one vCPU at a
/// time, against a real daemon: the figures the design's targets are about
/// (a kicked request ≤ 0.25 × an MMIO exit handled in userspace, a
/// suppressed one ≤ 0.05 ×, mirror reads: zero exits). A measurement, not a
/// test: enabled with VCPUFREQ_KVM_MEASURE=1, best with `-c release`.
/// Each figure is the median over rounds of (time of N ops − time of 0 ops) / N.
extension EndToEnd {
    @Suite(.enabled(if: ProcessInfo.processInfo.environment["VCPUFREQ_KVM_MEASURE"] != nil,
                    "set VCPUFREQ_KVM_MEASURE=1 to measure per-request costs against the daemon"))
    struct CostMeasurement {
        static let rounds = 7

        static func nanoseconds(_ d: Duration) -> Double {
            Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
        }

        struct Figure {
            var name: String
            var nanoseconds: Double
            var exitsPerOp: Double
        }

        static func measure(
            _ name: String, on vm: ConnectedVM, count: UInt32, _ op: (UInt32) -> GuestOp
        ) throws -> Figure {
            var samples: [Double] = []
            var exits = ExitCounts()
            for _ in 0..<rounds {
                let empty = try vm.run(vcpu: 0, [op(0)], timeout: .seconds(120))
                let full = try vm.run(vcpu: 0, [op(count)], timeout: .seconds(120))
                exits = full.exits
                samples.append((nanoseconds(full.duration) - nanoseconds(empty.duration)) / Double(count))
            }
            return Figure(name: name, nanoseconds: samples.sorted()[rounds / 2], exitsPerOp: Double(exits.total) / Double(count))
        }

        @Test func perRequestCostsAgainstTheDaemon() throws {
            let daemon = try TestDaemon(record: false)
            let kicked = try daemon.vm("duo")  // kick_mode always
            let polled = try daemon.vm("polled")  // kick_mode never
            let k = GuestPrograms(addresses: kicked.addresses)
            let p = GuestPrograms(addresses: polled.addresses)
            let outside = kicked.addresses.span.upperBound + 0x10_0000
            var figures: [Figure] = []
            figures.append(try Self.measure("MMIO write exit, the VMM drops it (no daemon)", on: kicked, count: 2_000) {
                .write32(outside, value: 1, count: $0)
            })
            figures.append(try Self.measure("set_perf: MMIO exit + posted WRITE", on: kicked, count: 2_000) {
                k.setPerf(vcpu: 0, kHz: 1_000_000, count: $0)
            })
            figures.append(try Self.measure("perftbl_sel: MMIO exit + SYNC WRITE (mirror)", on: kicked, count: 2_000) {
                .write32(kicked.addresses.upstream(.perftblSel, vcpu: 0), value: 1, count: $0)
            })
            figures.append(try Self.measure("cur_freq: MMIO exit + READ round trip", on: kicked, count: 2_000) {
                k.read(.curFreq, vcpu: 0, count: $0)
            })
            figures.append(try Self.measure("publish + ioeventfd kick (daemon woken)", on: kicked, count: 5_000) {
                k.publish(vcpu: 0, utilization: 500, flags: [.utilValid], count: $0)
            })
            figures.append(try Self.measure("publish, kicks suppressed (daemon polls)", on: polled, count: 200_000) {
                p.publish(vcpu: 0, utilization: 500, flags: [.utilValid], count: $0)
            })
            figures.append(try Self.measure("cur_perf load from the read-only mirror", on: kicked, count: 1_000_000) {
                k.ticks(vcpu: 0, count: $0)
            })
            let reference = figures[1].nanoseconds
            var lines = ["per guest request against a real daemon (median of \(Self.rounds) rounds, one vCPU):"]
            for figure in figures {
                let cost = figure.nanoseconds >= 1000
                    ? String(format: "%9.2f µs", figure.nanoseconds / 1000) : String(format: "%9.1f ns", figure.nanoseconds)
                lines.append("  \(figure.name.padding(toLength: 48, withPad: " ", startingAt: 0)) \(cost)   "
                    + String(format: "exits/op %.2f   × set_perf %.4f", figure.exitsPerOp, figure.nanoseconds / reference))
            }
            print(lines.joined(separator: "\n"))
            #expect(figures[6].exitsPerOp == 0)
            #expect(figures[4].exitsPerOp == 0 && figures[5].exitsPerOp == 0)
        }
    }
}
