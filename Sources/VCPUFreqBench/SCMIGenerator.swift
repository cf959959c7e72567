import Glibc
import VCPUFreqBenchSupport
import VCPUFreqClient
import VCPUFreqLinux

/// Drives the daemon's SCMI device as a guest's scmi-cpufreq would, on the
/// calling thread, through `VhostUserFrontEnd` (QEMU's side of vhost-user
/// played here): PERFORMANCE_LEVEL_SET commands on the cmdq, each domain
/// alternating between its lowest and highest level, so every command moves
/// the domain's hint; or LEVEL_GETs. A command is complete when the device
/// has interrupted (the daemon signals the call eventfd after applying the
/// batch's hints) and its used element says SUCCESS.
///
/// The hot loops allocate nothing: commands are written into one buffer,
/// slots and issue times are preallocated arrays.
final class SCMIGenerator {
    let frontEnd: VhostUserFrontEnd
    let domains: Int
    let lowKHz: UInt32
    let highKHz: UInt32
    /// Per domain: LEVEL_SETs issued (its parity picks the next level).
    private var issued: [UInt64]
    private var issuedAt: [UInt64]
    private let command: UnsafeMutableRawBufferPointer
    private var token: UInt32 = 0
    private var jitter = SplitMix64(seed: 0x5343_4D49)
    /// Commands sent, and answered with another status than SUCCESS.
    private(set) var sent: UInt64 = 0
    private(set) var failures: UInt64 = 0

    /// SCMI header fields: protocol 0x13, LEVEL_SET 0x7, LEVEL_GET 0x8 (docs/scmi.md).
    static let performance: UInt32 = 0x13
    static let levelSet: UInt32 = 0x7, levelGet: UInt32 = 0x8
    static let timeoutNanoseconds: UInt64 = 3_000_000_000

    init(frontEnd: VhostUserFrontEnd, domains: Int, lowKHz: UInt32, highKHz: UInt32) {
        precondition(domains <= Int(frontEnd.queueSize / 2), "one slot per domain")
        self.frontEnd = frontEnd
        self.domains = domains
        self.lowKHz = lowKHz
        self.highKHz = highKHz
        issued = Array(repeating: 0, count: domains)
        issuedAt = Array(repeating: 0, count: domains)
        command = .allocate(byteCount: 16, alignment: 4)
    }

    deinit { command.deallocate() }

    /// Posts the next command for `domain` in its slot (not kicked).
    private func post(domain: Int, path: BenchPath) {
        token = (token &+ 1) & 0x3FF
        let message = path == .scmiLevelGet ? Self.levelGet : Self.levelSet
        command.storeBytes(of: (message | Self.performance << 10 | token << 18).littleEndian, toByteOffset: 0, as: UInt32.self)
        command.storeBytes(of: UInt32(domain).littleEndian, toByteOffset: 4, as: UInt32.self)
        var length = 8
        if path != .scmiLevelGet {
            issued[domain] &+= 1
            let level = issued[domain] & 1 == 1 ? highKHz : lowKHz
            command.storeBytes(of: level.littleEndian, toByteOffset: 8, as: UInt32.self)
            length = 12
        }
        issuedAt[domain] = MonotonicClock.nowNanoseconds()
        frontEnd.post(slot: domain, request: UnsafeRawBufferPointer(rebasing: command[0..<length]), responseRoom: 64)
        sent &+= 1
    }

    /// Every used element now on the ring: its slot's latency recorded
    /// (when `histogram` is given); returns how many.
    private func collect(_ histogram: inout LatencyHistogram, record: Bool, done: (Int) throws -> Void) rethrows -> Int {
        var count = 0
        let now = MonotonicClock.nowNanoseconds()
        while let used = frontEnd.popUsed() {
            let response = frontEnd.response(slot: used.slot, length: used.length)
            if used.length < 8 || response.loadUnaligned(fromByteOffset: 4, as: UInt32.self) != 0 { failures &+= 1 }
            if record { histogram.record(now &- issuedAt[used.slot]) }
            count += 1
            try done(used.slot)
        }
        return count
    }

    private func waitInterrupt() throws {
        do { try frontEnd.waitInterrupt() } catch { throw BenchError("SCMI device: \(error)") }
    }

    // MARK: One command at a time

    /// `samples` commands one at a time over the domains, about
    /// `gapMicroseconds` apart (drawn from [gap/2, 3·gap/2], the generator
    /// busy meanwhile, so the daemon sleeps in epoll_wait when each comes):
    /// post + kick → interrupt. `path` .scmiLevelSetBatched sends eight at
    /// once, and records each from the kick to the interrupt.
    func measureLatency(path: BenchPath, samples: Int, gapMicroseconds: Int) throws -> LatencyHistogram {
        var histogram = LatencyHistogram()
        let gap = UInt64(max(gapMicroseconds, 0)) * 1000
        let batch = path == .scmiLevelSetBatched ? domains : 1
        var sample = 0
        while sample < samples {
            if gap > 0 {
                let until = MonotonicClock.nowNanoseconds() &+ gap / 2 &+ jitter.next() % (gap + 1)
                while MonotonicClock.nowNanoseconds() < until { sched_yield() }
            }
            for offset in 0..<batch { post(domain: (sample + offset) % domains, path: path) }
            try kick()
            var pending = batch
            while pending > 0 {
                try waitInterrupt()
                pending -= collect(&histogram, record: true) { _ in }
            }
            sample += batch
        }
        return histogram
    }

    private func kick() throws {
        do { try frontEnd.kick() } catch { throw BenchError("SCMI kick: \(error)") }
    }

    // MARK: Closed loop

    /// Closed loop: `inFlight` domains each with a command outstanding; on
    /// every interrupt the completed ones are reposted and kicked once.
    /// Warm-up, then the window (`windowStarts`/`windowEnds` at its edges),
    /// then the outstanding commands drain.
    func measureThroughput(
        path: BenchPath, inFlight: Int, warmupNanoseconds: UInt64, windowNanoseconds: UInt64,
        windowStarts: () -> Void, windowEnds: () -> Void
    ) throws -> LoadGenerator.ThroughputResult {
        enum Phase { case warming, measuring, draining }
        var histogram = LatencyHistogram()
        var phase = Phase.warming
        var completed: UInt64 = 0
        var outstanding = 0
        let begin = MonotonicClock.nowNanoseconds()
        let measureFrom = begin &+ warmupNanoseconds, measureUntil = measureFrom &+ windowNanoseconds
        var windowStart: UInt64 = 0, windowEnd: UInt64 = 0
        var generatorAtStart: ThreadUsage?, generatorAtEnd: ThreadUsage?
        for domain in 0..<inFlight { post(domain: domain, path: path) }
        outstanding = inFlight
        try kick()
        while true {
            try waitInterrupt()
            let measuring = phase == .measuring
            var reposted = 0
            let done = collect(&histogram, record: measuring) { slot in
                if phase != .draining {
                    post(domain: slot, path: path)
                    reposted += 1
                }
            }
            if measuring { completed &+= UInt64(done) }
            outstanding += reposted - done
            if reposted > 0 { try kick() }
            let now = MonotonicClock.nowNanoseconds()
            switch phase {
            case .warming where now >= measureFrom:
                windowStarts()
                generatorAtStart = ThreadUsage.current()
                windowStart = MonotonicClock.nowNanoseconds()
                phase = .measuring
            case .measuring where now >= measureUntil:
                windowEnd = MonotonicClock.nowNanoseconds()
                generatorAtEnd = ThreadUsage.current()
                windowEnds()
                phase = .draining
            case .draining where outstanding == 0:
                return LoadGenerator.ThroughputResult(
                    completed: completed, windowNanoseconds: windowEnd &- windowStart, latency: histogram, doorbellWrites: 0,
                    generatorCPUNanoseconds: generatorAtEnd.flatMap { end in generatorAtStart.map { end.since($0).cpuNanoseconds } })
            default:
                break
            }
            if now &- begin > warmupNanoseconds &+ windowNanoseconds &+ Self.timeoutNanoseconds {
                throw BenchError("SCMI closed loop did not drain: \(outstanding) commands outstanding")
            }
        }
    }
}
