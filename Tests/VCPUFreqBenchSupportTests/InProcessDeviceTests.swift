import Foundation
import Testing
import VCPUFreqCore
import VCPUFreqBenchSupport

/// Path 1's device, called directly on the test's own thread (as the vCPU
/// thread calls it on an exit): it answers cur_perf, and a set_perf write
/// makes the two sched_setattr calls on the calling thread.
@Suite(.serialized) struct InProcessDeviceTests {
    static let map = DeviceAddressMap(vcpuCount: 2)

    static func register(_ register: UpstreamABI.Register, vcpu: Int) -> UInt64 {
        map.base + UpstreamABI.windowSize * UInt64(vcpu) + register.rawValue
    }

    static func device() -> InProcessDevice {
        InProcessDevice(base: map.base, vcpuCount: 2, capacity: 1024, maximumKHz: 3_000_000, currentPerformanceKHz: 2_500_000)
    }

    /// `se.slice` of the calling thread, ns (nil where the kernel does not show it).
    static func ownSlice() -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/thread-self/sched", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("se.slice") {
            return line.split(separator: ":").last.flatMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        }
        return nil
    }

    @Test func curPerfOfEveryWindowIsTheCachedValueAndNothingElseReads() {
        let device = Self.device()
        #expect(device.read(vcpu: 0, gpa: Self.register(.curPerf, vcpu: 0), width: 4) == 2_500_000)
        #expect(device.read(vcpu: 1, gpa: Self.register(.curPerf, vcpu: 1), width: 4) == 2_500_000)
        #expect(device.read(vcpu: 0, gpa: Self.register(.perftblLen, vcpu: 0), width: 4) == 0)
        #expect(device.read(vcpu: 0, gpa: Self.register(.curPerf, vcpu: 0), width: 2) == 0)
        #expect(device.read(vcpu: 0, gpa: Self.register(.curPerf, vcpu: 2), width: 4) == 0)  // no third vCPU
        #expect(device.read(vcpu: 0, gpa: Self.map.base - 4, width: 4) == 0)
        #expect(device.counts.reads == 2)
    }

    @Test func onlySetPerfStoresAreRequests() {
        let device = Self.device()
        device.write(vcpu: 0, gpa: Self.register(.perftblSel, vcpu: 0), width: 4, value: 1)
        device.write(vcpu: 0, gpa: Self.register(.setPerf, vcpu: 0), width: 2, value: 1_000_000)
        device.write(vcpu: 0, gpa: Self.map.base + 0x40_0000, width: 4, value: 500)  // util-hint window
        #expect(device.counts.requests == 0)
        #expect(device.counts.sliceChanges + device.counts.sliceFailures == 0)
    }

    /// Each set_perf makes both calls: the uclamp one (fails without
    /// CONFIG_UCLAMP_TASK, succeeds with it) and the slice one; a request at
    /// the top of the table gives the calling thread a 300 µs slice, one at
    /// the bottom the default slice back.
    @Test func setPerfChangesTheCallingThreadsSliceEveryTime() throws {
        let device = Self.device()
        let before = Self.ownSlice()
        defer { InProcessDevice.restoreDefaultSlice(of: 0) }
        device.write(vcpu: 0, gpa: Self.register(.setPerf, vcpu: 0), width: 4, value: 3_000_000)
        var counts = device.counts
        #expect(counts.requests == 1)
        #expect(counts.sliceChanges + counts.sliceFailures == 1)
        #expect(counts.uclampFailures <= 1)
        if counts.uclampFailures == 1 { #expect(counts.lastUclampErrno != 0) }
        guard counts.sliceChanges == 1, let fast = Self.ownSlice() else { return }  // no EEVDF slices here
        #expect(fast == InProcessDevice.shortSliceNanoseconds)
        device.write(vcpu: 0, gpa: Self.register(.setPerf, vcpu: 0), width: 4, value: 1_000_000)
        counts = device.counts
        #expect(counts.requests == 2 && counts.sliceChanges == 2)
        #expect(Self.ownSlice() == before)
    }
}
