import Testing
import VCPUFreqCore
import VCPUFreqKVM

@testable import VCPUFreqBPF

extension KernelTests {
    /// The KVM exit counters against a real guest: the reference VMM's vCPU
    /// thread runs a script of N accesses that each leave KVM_RUN for the
    /// VMM, and the programs must count exactly those for that thread.
    @Suite(.enabled(if: FileSystems.exists("/dev/kvm"), "no /dev/kvm on this machine"))
    struct KVMExits {
        enum Access: String, CaseIterable, CustomStringConvertible {
            case mmioWrite, mmioRead, portWrite
            var description: String { rawValue }
        }

        /// set_perf of vCPU 0 in the device space: no memslot behind it, so
        /// every access is an exit to the VMM.
        static let mmioAddress = DeviceAddressMap(vcpuCount: 1).base + UpstreamABI.Register.setPerf.rawValue
        static let port: UInt16 = 0x510

        static func script(_ access: Access, count: UInt32) -> GuestScript {
            switch access {
            case .mmioWrite: return [.write32(mmioAddress, value: 1_000_000, count: count)]
            case .mmioRead: return [.read32(mmioAddress, count: count)]
            case .portWrite: return [.portWrite(port: port, width: .byte, value: 7, count: count)]
            }
        }

        @Test(
            "a reference-VMM guest doing N exits shows N userspace exits of that kind for its vCPU thread",
            arguments: Access.allCases, [1, 100, 2000] as [UInt32])
        func exitsCounted(access: Access, count: UInt32) throws {
            let monitor = try Support.startedMonitor { $0.countKVMExits = true }
            try #require(monitor.status.isAttached("on_kvm_userspace_exit"), "\(monitor.status)")
            let vm = try VirtualMachine(vcpuCount: 1)
            let vcpu = vm.vcpus[0]
            try monitor.track(tid: vcpu.threadID)
            let before = try #require(try monitor.exits(tid: vcpu.threadID))

            let run = try vcpu.run(script: Self.script(access, count: count))
            let after = try #require(try monitor.exits(tid: vcpu.threadID))
            let n = UInt64(count)

            // The VMM's own count (its exit loop, independent of BPF): N accesses reached its handler.
            switch access {
            case .mmioWrite: #expect(run.exits.mmioWrites == n)
            case .mmioRead: #expect(run.exits.mmioReads == n)
            case .portWrite: #expect(run.exits.io == n)
            }
            #expect(run.exits.total == n)

            // The programs, for the vCPU thread. Every run also ends with one
            // MMIO write the VMM consumes itself (the script's DONE mark), and
            // the VMM then re-enters once with immediate_exit set (-EINTR).
            let mmio = after.userspaceExits(.mmio) - before.userspaceExits(.mmio)
            let io = after.userspaceExits(.io) - before.userspaceExits(.io)
            #expect(mmio == (access == .portWrite ? 0 : n) + 1)
            #expect(io == (access == .portWrite ? n : 0))
            #expect(after.userspaceExitsInterrupted - before.userspaceExitsInterrupted == 1)
            #expect(after.userspaceExitErrors == before.userspaceExitErrors)
            #expect(after.totalUserspaceExits - before.totalUserspaceExits == n + 2)
            // kvm_mmio sees the same accesses by type; kvm_pio the port writes.
            #expect(after.mmioWrites - before.mmioWrites == (access == .mmioWrite ? n : 0) + 1)
            #expect(after.mmioUnsatisfiedReads - before.mmioUnsatisfiedReads == (access == .mmioRead ? n : 0))
            #expect(after.pioOut - before.pioOut == (access == .portWrite ? n : 0))
            #expect(after.pioIn == before.pioIn)
        }

        @Test("exits are counted for the thread that ran KVM_RUN only")
        func otherThreadsSeeNone() throws {
            let monitor = try Support.startedMonitor { $0.countKVMExits = true }
            let vm = try VirtualMachine(vcpuCount: 2)
            for vcpu in vm.vcpus { try monitor.track(tid: vcpu.threadID) }
            _ = try vm.vcpus[0].run(script: Self.script(.mmioWrite, count: 50))
            #expect(try monitor.exits(tid: vm.vcpus[0].threadID)?.userspaceExits(.mmio) == 51)
            #expect(try monitor.exits(tid: vm.vcpus[1].threadID) == VCPUFreqBPF.ExitCounts())
        }
    }
}
