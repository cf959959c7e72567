import Foundation
import Synchronization
import Testing
import VCPUFreqCore
import VCPUFreqKVM

/// Per-operation guest costs on this host, printed for comparison with
/// docs/host-notes (MMIO exit ~30 µs, ioeventfd ~5 µs). A measurement, not a
/// test: enabled with VCPUFREQ_KVM_MEASURE=1, best run with `-c release`.
/// Each figure is the median over rounds of (time of N ops − time of 0 ops) / N.
@Suite(
    .serialized,
    .enabled(if: kvmAvailable && ProcessInfo.processInfo.environment["VCPUFREQ_KVM_MEASURE"] != nil,
        "set VCPUFREQ_KVM_MEASURE=1 to measure exit costs"))
struct ExitCostMeasurement {
    static let rounds = 7

    static func nanoseconds(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
    }

    /// Median per-op cost of `op(n)` in nanoseconds, and the exits of the last big run.
    static func measure(_ vcpu: VCPU, count: UInt32, _ op: (UInt32) -> GuestOp) throws -> (Double, ExitCounts) {
        var samples: [Double] = []
        var exits = ExitCounts()
        for _ in 0..<rounds {
            let empty = try vcpu.run(script: [op(0)], timeout: .seconds(120))
            let full = try vcpu.run(script: [op(count)], timeout: .seconds(120))
            exits = full.exits
            samples.append((nanoseconds(full.duration) - nanoseconds(empty.duration)) / Double(count))
        }
        return (samples.sorted()[rounds / 2], exits)
    }

    @Test func perOperationCosts() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let vcpu = vm.vcpus[0]
        let scratch = vm.layout.scratch.lowerBound
        let memfd = try MemFD.create(name: "measure", size: 0x2000)
        defer { try? memfd.close() }
        let mirror = try vm.addMemory(gpa: deviceMap.base, size: 0x1000, from: memfd, readOnly: true)
        mirror.store32(1_800_000, at: 0)
        let shared = try vm.addMemory(gpa: sharedPageAddress, size: 0x1000, from: memfd, offset: 0x1000, readOnly: false)
        let slot = sharedPageAddress + UInt64(SharedPageABI.slotOffset(0))
        let hostFlags = SharedPageABI.slotOffset(0) + SharedPageABI.Slot.hostFlags

        let quiet = try EventFD()
        _ = try vm.registerIOEventFD(gpa: doorbellAddress(1), length: 4, eventfd: quiet.fileDescriptor)
        _ = try vm.registerIOEventFD(gpa: 0x520, length: 1, eventfd: quiet.fileDescriptor, space: .port)
        // A doorbell with a thread blocked on it, as the daemon will have.
        let woken = try EventFD(nonBlocking: false)
        _ = try vm.registerIOEventFD(gpa: doorbellAddress(0), length: 4, eventfd: woken.fileDescriptor)
        let wakeups = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let reader = Thread {
            while !stop.load(ordering: .relaxed) {
                if (try? woken.read()) != nil { wakeups.add(1, ordering: .relaxed) }
            }
        }
        reader.start()
        defer {
            stop.store(true, ordering: .relaxed)
            try? woken.signal()
        }

        var lines: [String] = []
        var costs: [String: Double] = [:]
        func record(_ name: String, count: UInt32, _ op: (UInt32) -> GuestOp) throws {
            let (ns, exits) = try Self.measure(vcpu, count: count, op)
            costs[name] = ns
            let perOp = String(format: "%12.1f ns", ns)
            lines.append("\(name.padding(toLength: 46, withPad: " ", startingAt: 0)) \(perOp)   exits/op \(String(format: "%.2f", Double(exits.total) / Double(count)))")
        }
        try record("MMIO write exit (handler drops)", count: 2000) {
            .write32(upstreamRegister(.setPerf, vcpu: 1), value: 1, count: $0)
        }
        try record("MMIO read exit (handler returns 0)", count: 2000) { .read32(upstreamRegister(.curPerf, vcpu: 1), count: $0) }
        try record("PIO write exit", count: 2000) { .portWrite(port: 0x510, width: .byte, value: 1, count: $0) }
        try record("MMIO write to ioeventfd, no reader", count: 20_000) { .write32(doorbellAddress(1), value: 0, count: $0) }
        wakeups.store(0, ordering: .relaxed)
        try record("MMIO write to ioeventfd, blocked reader", count: 20_000) { .write32(doorbellAddress(0), value: 0, count: $0) }
        let readerWakeups = wakeups.load(ordering: .relaxed)
        try record("PIO write to ioeventfd, no reader", count: 20_000) { .portWrite(port: 0x520, width: .byte, value: 1, count: $0) }
        try record("RAM write (32-bit)", count: 10_000_000) { .write32(scratch, value: 1, count: $0) }
        try record("read-only mirror read (cur_perf)", count: 10_000_000) { .read32(deviceMap.base, count: $0) }
        shared.store32(0, at: hostFlags)
        try record("publish, kicks suppressed", count: 1_000_000) {
            .publish(slot: slot, utilization: 512, performanceKHz: 1_000_000, flags: [.utilValid], doorbell: doorbellAddress(1), count: $0)
        }
        shared.store32(SharedPageABI.HostSlotFlags.kick.rawValue, at: hostFlags)
        try record("publish + ioeventfd kick, no reader", count: 20_000) {
            .publish(slot: slot, utilization: 512, performanceKHz: 1_000_000, flags: [.utilValid], doorbell: doorbellAddress(1), count: $0)
        }
        try record("publish + ioeventfd kick, blocked reader", count: 20_000) {
            .publish(slot: slot, utilization: 512, performanceKHz: 1_000_000, flags: [.utilValid], doorbell: doorbellAddress(0), count: $0)
        }
        let calibration = try vcpu.calibrateSpin()
        print("vCPU thread \(vcpu.threadID); spin iteration \(String(format: "%.3f", calibration.nanosecondsPerIteration)) ns")
        for line in lines { print(line) }
        print("reader wake-ups during the blocked-reader ioeventfd run: \(readerWakeups)")
        if let mmio = costs["MMIO write exit (handler drops)"],
            let kick = costs["publish + ioeventfd kick, blocked reader"],
            let suppressed = costs["publish, kicks suppressed"]
        {
            print(String(format: "ratios to an MMIO write exit: publish+kick %.3f (target <= 0.25), suppressed %.5f (target <= 0.05)", kick / mmio, suppressed / mmio))
        }
    }
}
