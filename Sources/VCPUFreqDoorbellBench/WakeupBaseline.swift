import Foundation
import Glibc
import Synchronization
import VCPUFreqBenchSupport
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqLinux

/// The floor under every daemon path, measured without KVM: how long a
/// thread blocked on an eventfd (the daemon in epoll_wait) takes to run
/// after another thread writes it, while the writer keeps its CPU busy (as
/// a vCPU spinning on the shared page does). Same placements as the paths,
/// so a path's latency can be split into "wake the daemon" and the rest.
///
/// Per sample: the waker spins a random 0...1 ms (the reader settles into
/// its blocking read), stamps CLOCK_MONOTONIC, writes the eventfd and spins
/// until the reader acknowledges through memory; the reader stamps when
/// read(2) returns. Latency = reader's stamp − waker's stamp.
public struct WakeupBaseline: Sendable, Equatable, Codable {
    public var placement: Placement
    public var latency: LatencySummary?

    /// Measures `samples` wake-ups with the waker on `placement`'s vCPU CPUs
    /// and the reader on its daemon CPUs.
    public static func measure(placement: Placement, cpuCount: Int, samples: Int) -> WakeupBaseline {
        guard let (wakerCPUs, readerCPUs) = placement.cpus(cpuCount: cpuCount), samples > 0 else {
            return WakeupBaseline(placement: placement, latency: nil)
        }
        // Blocking: the reader sleeps in read(2) as the daemon sleeps in epoll_wait.
        guard let eventfd = try? EventFD(nonBlocking: false) else {
            return WakeupBaseline(placement: placement, latency: nil)
        }
        let shared = Shared(samples: samples)
        let reader = Thread {
            try? ThreadScheduling.setAffinity(readerCPUs, of: ThreadScheduling.currentThreadID())
            if placement.daemonRealtime { try? Placement.schedule(ThreadScheduling.currentThreadID(), realtime: true) }
            shared.readerReady.store(true, ordering: .releasing)
            for index in 0..<samples {
                guard (try? eventfd.read()) != nil else { break }
                let woke = Self.now()
                shared.record(index, woke &- shared.sentAt.load(ordering: .acquiring))
                shared.acknowledged.store(index + 1, ordering: .releasing)
            }
            shared.finished.store(true, ordering: .releasing)
        }
        reader.start()
        let waker = ThreadScheduling.currentThreadID()
        let original = try? ThreadScheduling.affinity(of: waker)
        try? ThreadScheduling.setAffinity(wakerCPUs, of: waker)
        defer { if let original { try? ThreadScheduling.setAffinity(original, of: waker) } }
        while !shared.readerReady.load(ordering: .acquiring) { usleep(100) }
        var generator = SystemRandomNumberGenerator()
        for index in 0..<samples where !shared.finished.load(ordering: .acquiring) {
            let settle = Self.now() &+ UInt64.random(in: 0...1_000_000, using: &generator)
            while Self.now() < settle {}
            shared.sentAt.store(Self.now(), ordering: .releasing)
            guard (try? eventfd.signal()) != nil else { break }
            // Busy until acknowledged, at most a second (a reader that died).
            let deadline = Self.now() &+ 1_000_000_000
            while shared.acknowledged.load(ordering: .acquiring) <= index, Self.now() < deadline {}
        }
        let give = Self.now() &+ 1_000_000_000
        while !shared.finished.load(ordering: .acquiring), Self.now() < give { usleep(100) }
        let microseconds = shared.values().map { Double($0) / 1000 }
        return WakeupBaseline(placement: placement, latency: LatencySummary(microseconds))
    }

    private final class Shared: @unchecked Sendable {
        let sentAt = Atomic<UInt64>(0)
        let acknowledged = Atomic<Int>(0)
        let readerReady = Atomic<Bool>(false)
        let finished = Atomic<Bool>(false)
        private let lock = AnnotatedMutex<[UInt64]>([])

        init(samples: Int) { lock.withLock { $0.reserveCapacity(samples) } }
        func record(_ index: Int, _ nanoseconds: UInt64) { lock.withLock { $0.append(nanoseconds) } }
        func values() -> [UInt64] { lock.withLock { $0 } }
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}
