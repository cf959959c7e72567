import Foundation
import Testing
import VCPUFreqProtocol

@testable import VCPUFreqBPF

/// Host truth in STATUS and the `vcpufreq stats` arithmetic, on hand-made
/// samples whose expected rates and percentiles are computed here by hand.
@Suite struct StatsReportTests {
    /// A sample: `buckets` as (index, count) pairs.
    static func truth(
        at seconds: Double, runtimeMilliseconds: UInt64 = 0, buckets: [(Int, UInt64)] = [], delaySumMicroseconds: UInt64 = 0,
        involuntary: UInt64 = 0, voluntary: UInt64 = 0, migrations: UInt64 = 0, exits: StatusDocument.Exits = .init()
    ) -> StatusDocument.HostTruth {
        var histogram = [UInt64](repeating: 0, count: 32)
        for (index, count) in buckets { histogram[index] = count }
        while histogram.last == 0 { histogram.removeLast() }
        return StatusDocument.HostTruth(
            sampledAtNanoseconds: UInt64(seconds * 1e9), runtimeNanoseconds: runtimeMilliseconds * 1_000_000,
            onCPU: false, wakeups: 0, voluntarySwitches: voluntary, involuntarySwitches: involuntary,
            migrations: migrations, lastCPU: 0, runDelaySumNanoseconds: delaySumMicroseconds * 1000,
            runDelayCount: buckets.reduce(0) { $0 + $1.1 }, runDelayBuckets: histogram, exits: exits)
    }

    static func mmioExits(_ mmio: UInt64, io: UInt64 = 0, eintr: UInt64 = 0) -> StatusDocument.Exits {
        var reasons: [StatusDocument.ReasonCount] = []
        if io > 0 { reasons.append(.init(reason: 2, name: "IO", count: io)) }
        if mmio > 0 { reasons.append(.init(reason: 6, name: "MMIO", count: mmio)) }
        return StatusDocument.Exits(userspace: reasons, userspaceInterrupted: eintr, mmioWrites: mmio)
    }

    @Test("the guest's requests at the vCPU's scheduling events: differences, mean utilization, shares, and the table line")
    func guestInterval() throws {
        var old = Self.truth(at: 10)
        old.guest = StatusDocument.GuestSamples(
            reads: 40, busy: 1, newRequests: 10, capped: 2, rejected: 0, utilizationReads: 30, utilizationSum: 12_000,
            latencyReads: 5, boostReads: 0, lastSequence: 20, lastUtilization: 400)
        var new = Self.truth(at: 12)
        // 60 more reads, 20 of them of new requests, 50 with a utilization summing 25,000 (mean 500),
        // 15 latency-sensitive (25 %), 6 boosted (10 %), 3 capped, 2 busy.
        new.guest = StatusDocument.GuestSamples(
            reads: 100, busy: 3, newRequests: 30, capped: 5, rejected: 0, utilizationReads: 80, utilizationSum: 37_000,
            latencyReads: 20, boostReads: 6, lastSequence: 60, lastUtilization: 600)
        let interval = try #require(StatsReport.interval(from: old, to: new))
        let guest = try #require(interval.guest)
        #expect(guest.reads == 60 && guest.newRequests == 20 && guest.busy == 2 && guest.capped == 3 && guest.rejected == 0)
        #expect(guest.meanUtilization == 500)
        #expect(guest.latencyShare == 0.25 && guest.boostShare == 0.1)
        #expect(guest.lastUtilization == 600)
        #expect(StatsReport.guest(guest)
            == "guest at switches/ticks (bpf): 60 reads, 20 new, util mean 500.0 (last 600), latency 25.0%, boost 10.0%, capped 3, busy 2")
        // First samples since tracked: the earlier sample had none yet.
        let fresh = try #require(StatsReport.guestInterval(from: nil, to: new.guest))
        #expect(fresh.reads == 100 && fresh.meanUtilization == 462.5)
        // Counters that went backwards (a TID tracked anew): no figures; none without samples.
        #expect(StatsReport.guestInterval(from: new.guest, to: old.guest) == nil)
        #expect(StatsReport.interval(from: old, to: Self.truth(at: 12))?.guest == nil)
    }

    @Test("an interval: share, percentiles of the new delays only, rates")
    func interval() throws {
        // 10 earlier runs in bucket 0 and 5 in bucket 3; in the interval 98
        // more in bucket 3 ([8, 16) µs) and 2 in bucket 10 ([1024, 2048) µs).
        let old = Self.truth(
            at: 10, runtimeMilliseconds: 1000, buckets: [(0, 10), (3, 5)], delaySumMicroseconds: 100,
            involuntary: 4, voluntary: 7, migrations: 1, exits: Self.mmioExits(500, eintr: 1))
        let new = Self.truth(
            at: 12, runtimeMilliseconds: 1500, buckets: [(0, 10), (3, 103), (10, 2)],
            delaySumMicroseconds: 100 + 98 * 10 + 2 * 1500, involuntary: 24, voluntary: 9, migrations: 4,
            exits: Self.mmioExits(2500, io: 6, eintr: 3))
        let interval = try #require(StatsReport.interval(from: old, to: new))
        #expect(interval.intervalSeconds == 2)
        #expect(interval.runtimeShare == 0.25)  // 500 ms of 2 s
        #expect(interval.runs == 100)
        // Median: the 50th of the 100 new delays lies in bucket 3 (the old ones do not count).
        #expect(interval.runDelayP50Microseconds == 16)
        // 99th: ranks 99 and 100 are the two in bucket 10.
        #expect(interval.runDelayP99Microseconds == 2048)
        #expect(interval.runDelayMeanMicroseconds == Double(98 * 10 + 2 * 1500) / 100)
        #expect(interval.involuntarySwitches == 20)
        #expect(interval.voluntarySwitches == 2)
        #expect(interval.migrations == 3)
        let exits = interval.exitsPerSecond
        #expect(exits.userspace == (2000 + 6 + 2) / 2)
        #expect(exits.byReason == [.init(reason: 2, name: "IO", perSecond: 3), .init(reason: 6, name: "MMIO", perSecond: 1000)])
        #expect(exits.interrupted == 1)
        #expect(exits.mmioWrites == 1000)
        #expect(exits.kvm == 0)
    }

    @Test("no runs in the interval: no percentiles, no mean")
    func idleInterval() throws {
        let old = Self.truth(at: 1, buckets: [(4, 3)], delaySumMicroseconds: 60)
        let new = Self.truth(at: 2, buckets: [(4, 3)], delaySumMicroseconds: 60)
        let interval = try #require(StatsReport.interval(from: old, to: new))
        #expect(interval.runs == 0)
        #expect(interval.runDelayP50Microseconds == nil)
        #expect(interval.runDelayP99Microseconds == nil)
        #expect(interval.runDelayMeanMicroseconds == nil)
        #expect(interval.runtimeShare == 0)
        #expect(interval.exitsPerSecond.userspace == 0)
    }

    @Test("samples out of order or counters going backwards give no interval")
    func regressions() {
        let base = Self.truth(at: 5, runtimeMilliseconds: 100, buckets: [(2, 4)], involuntary: 3, exits: Self.mmioExits(10))
        #expect(StatsReport.interval(from: base, to: base) == nil)  // no time passed
        #expect(StatsReport.interval(from: base, to: Self.truth(at: 4, runtimeMilliseconds: 200)) == nil)
        // Re-tracked: runtime, a bucket, switches or exits smaller than before.
        #expect(StatsReport.interval(from: base, to: Self.truth(at: 6, runtimeMilliseconds: 50, buckets: [(2, 4)], involuntary: 3, exits: Self.mmioExits(10))) == nil)
        #expect(StatsReport.interval(from: base, to: Self.truth(at: 6, runtimeMilliseconds: 100, buckets: [(2, 3), (5, 1)], involuntary: 3, exits: Self.mmioExits(10))) == nil)
        #expect(StatsReport.interval(from: base, to: Self.truth(at: 6, runtimeMilliseconds: 100, buckets: [(2, 4)], involuntary: 2, exits: Self.mmioExits(10))) == nil)
        #expect(StatsReport.interval(from: base, to: Self.truth(at: 6, runtimeMilliseconds: 100, buckets: [(2, 4)], involuntary: 3, exits: Self.mmioExits(9))) == nil)
        #expect(StatsReport.interval(from: base, to: Self.truth(at: 6, runtimeMilliseconds: 100, buckets: [(2, 4)], involuntary: 3, exits: Self.mmioExits(10))) != nil)
    }

    @Test("a share never exceeds the whole interval")
    func shareCapped() throws {
        let interval = try #require(
            StatsReport.interval(from: Self.truth(at: 1), to: Self.truth(at: 2, runtimeMilliseconds: 1003)))
        #expect(interval.runtimeShare == 1)
    }

    // MARK: Documents

    static func vcpu(_ index: Int, tid: Int32, truth: StatusDocument.HostTruth?) -> StatusDocument.VCPU {
        var vcpu = StatusDocument.VCPU(
            index: index, tid: tid, domain: 0, lastRequest: "util_hint 600", utilMin: 600, utilMax: 1024,
            latency: "slice=300us", cpus: nil, currentPerformanceKHz: 2_000_000, capped: false, requests: 1, kicks: 0,
            hintsApplied: 1, invalidAccesses: 0, actuationErrors: 0)
        vcpu.hostTruth = truth
        return vcpu
    }

    static func document(bpf: String = "loaded", vms: [(UInt32, [StatusDocument.VCPU])]) -> StatusDocument {
        let daemon = StatusDocument.Daemon(
            version: "0", pid: 1, uptimeSeconds: 1, actuators: "", actuatorNotes: [], capabilities: [:], bpf: bpf,
            dryRun: false, connections: 1, vcpus: 0, recoveredThreads: 0)
        let counters = StatusDocument.Counters(
            accesses: 0, requests: 0, kicks: 0, polls: 0, invalidAccesses: 0, actuationErrors: 0, threadsGone: 0, restores: 0)
        return StatusDocument(
            daemon: daemon,
            vms: vms.map { id, vcpus in
                StatusDocument.VM(
                    id: id, name: "vm\(id)", profile: "p", peerPID: 1, peerUID: 0, actuators: "", kickMode: "adaptive",
                    polling: false, sharedMapped: false, mirrorMapped: false, counters: counters, invalidAccesses: [:],
                    vcpus: vcpus)
            })
    }

    @Test("a report pairs vCPUs by VM id, index and TID; others get no host figures")
    func pairing() throws {
        let earlier = Self.document(vms: [
            (1, [Self.vcpu(0, tid: 100, truth: Self.truth(at: 1)), Self.vcpu(1, tid: 101, truth: Self.truth(at: 1))])
        ])
        let later = Self.document(
            bpf: "loaded: later",
            vms: [
                (1, [
                    Self.vcpu(0, tid: 100, truth: Self.truth(at: 2, runtimeMilliseconds: 100)),
                    Self.vcpu(1, tid: 201, truth: Self.truth(at: 2)),  // another thread now
                ]),
                (2, [Self.vcpu(0, tid: 300, truth: Self.truth(at: 2))]),  // attached in between
            ])
        let report = StatsReport(earlier: earlier, later: later)
        #expect(report.bpf == "loaded: later")
        #expect(report.vms.map(\.id) == [1, 2])
        let first = try #require(report.vms.first)
        #expect(first.vcpus.map(\.tid) == [100, 201])
        #expect(first.vcpus[0].host?.runtimeShare == 0.1)
        #expect(first.vcpus[0].requested == "util_hint 600")
        #expect(first.vcpus[0].utilMin == 600 && first.vcpus[0].utilMax == 1024 && first.vcpus[0].latency == "slice=300us")
        #expect(first.vcpus[1].host == nil)
        #expect(report.vms[1].vcpus[0].host == nil)
    }

    @Test("the table shows the guest's side and the host's, '-' where there is no host truth")
    func table() throws {
        let earlier = Self.document(vms: [
            (1, [
                Self.vcpu(0, tid: 100, truth: Self.truth(at: 10, buckets: [(3, 1)], exits: Self.mmioExits(0))),
                Self.vcpu(1, tid: 101, truth: nil),
            ])
        ])
        let later = Self.document(vms: [
            (1, [
                Self.vcpu(
                    0, tid: 100,
                    truth: Self.truth(
                        at: 12, runtimeMilliseconds: 500, buckets: [(3, 101)], delaySumMicroseconds: 1000,
                        involuntary: 8, exits: Self.mmioExits(2000))),
                Self.vcpu(1, tid: 101, truth: nil),
            ])
        ])
        let text = StatsReport(earlier: earlier, later: later).render()
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.first == "bpf: loaded")
        #expect(lines.contains("vm \"vm1\" (id 1, profile p)"))
        let header = try #require(lines.first { $0.hasPrefix("  vcpu") })
        for title in ["tid", "requested", "applied", "on-cpu", "delay p50", "p99", "mean", "invol/s", "migr", "exits/s"] {
            #expect(header.contains(title))
        }
        let row = try #require(lines.first { $0.hasPrefix("  0 ") })
        let cells = row.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        // 500 ms of 2 s; 100 runs in [8, 16) µs, mean 10 µs; 8 preemptions in 2 s; 2000 MMIO exits in 2 s.
        #expect(cells == [
            "0", "100", "util_hint", "600", "600..1024", "slice=300us", "25.0%", "<16", "us", "<16", "us", "10.0", "us",
            "4.0", "0", "1000.0", "(MMIO", "1000.0)",
        ])
        let missing = try #require(lines.first { $0.hasPrefix("  1 ") })
        #expect(missing.split(separator: " ").suffix(7).allSatisfy { $0 == "-" })
    }

    @Test(
        "fixed-point numbers without Foundation",
        arguments: [
            (0.0, 1, "0.0"), (25.0, 1, "25.0"), (0.05, 1, "0.1"), (999.96, 1, "1000.0"), (3.14159, 3, "3.142"),
            (-2.5, 1, "-2.5"), (1234.5, 0, "1235"), (0.004, 2, "0.00"),
        ] as [(Double, Int, String)])
    func fixed(value: Double, digits: Int, expected: String) {
        #expect(StatsReport.fixed(value, digits: digits) == expected)
    }

    // MARK: STATUS form

    @Test("ThreadStats and ExitCounts become host truth and back")
    func hostTruthFromBPF() throws {
        var buckets = [UInt64](repeating: 0, count: 32)
        buckets[1] = 7
        buckets[5] = 2
        let stats = ThreadStats(
            runtimeNanoseconds: 123, isOnCPU: true, wakeups: 4, voluntarySwitches: 5, involuntarySwitches: 6,
            migrations: 7, runDelay: RunDelayHistogram(buckets: buckets, sumNanoseconds: 999, count: 9), lastCPU: 1)
        var reasons = [UInt64](repeating: 0, count: ExitCounts.countedReasons)
        reasons[6] = 40
        reasons[24] = 1
        let exits = ExitCounts(
            kvmExits: 3, userspaceExitsByReason: reasons, userspaceExitsOtherReason: 2, userspaceExitsInterrupted: 5,
            mmioWrites: 40, mmioUnsatisfiedReads: 1, pioOut: 8)
        let truth = StatusDocument.HostTruth(stats: stats, exits: exits, sampledAtNanoseconds: 77)
        #expect(truth.runDelayBuckets == [0, 7, 0, 0, 0, 2])  // trailing empty buckets left out
        #expect(truth.runDelay == stats.runDelay)
        #expect(truth.sampledAtNanoseconds == 77 && truth.runtimeNanoseconds == 123 && truth.onCPU)
        #expect(truth.lastCPU == 1 && truth.migrations == 7 && truth.involuntarySwitches == 6)
        #expect(truth.exits.userspace == [
            .init(reason: 6, name: "MMIO", count: 40), .init(reason: 24, name: "SYSTEM_EVENT", count: 1),
            .init(reason: UInt32.max, name: "other", count: 2),
        ])
        #expect(truth.exits.userspace(reason: 6) == 40)
        #expect(truth.exits.userspace(reason: 2) == 0)
        #expect(truth.exits.totalUserspace == exits.totalUserspaceExits)
        #expect(truth.exits.kvmExits == 3 && truth.exits.pioOut == 8 && truth.exits.mmioUnsatisfiedReads == 1)
    }

    @Test("host truth survives the STATUS JSON (snake_case keys) and is optional in it")
    func statusJSON() throws {
        let document = Self.document(vms: [
            (1, [Self.vcpu(0, tid: 100, truth: Self.truth(at: 3, buckets: [(2, 1)], exits: Self.mmioExits(5, io: 1)))])
        ])
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = try encoder.encode(document)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"host_truth\""))
        #expect(text.contains("\"run_delay_buckets\""))
        #expect(text.contains("\"name\":\"MMIO\""))
        // The wire keys stay what convertToSnakeCase always made of them, and decode again.
        for key in ["peer_pid", "peer_uid", "on_cpu", "last_cpu", "current_performance_k_hz"] {
            #expect(text.contains("\"\(key)\""), "\(key)")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        #expect(try decoder.decode(StatusDocument.self, from: data) == document)
        // A reader that restores acronyms itself (peer_pid → peerPID, as the
        // reference VMM's status decoding does) still decodes it.
        let acronymDecoder = JSONDecoder()
        acronymDecoder.keyDecodingStrategy = .custom { path in
            let words = (path.last?.stringValue ?? "").split(separator: "_").map(String.init)
            let camel = (words.first ?? "") + words.dropFirst().map { word in
                ["pid", "uid"].contains(word) ? word.uppercased() : word.prefix(1).uppercased() + word.dropFirst()
            }.joined()
            return AnyKey(stringValue: camel)
        }
        #expect(try acronymDecoder.decode(StatusDocument.self, from: data).vms[0].peerPID == document.vms[0].peerPID)
        // A daemon without BPF (or an older one) sends no host_truth.
        var bare = document
        bare.vms[0].vcpus[0].hostTruth = nil
        let bareText = String(decoding: try encoder.encode(bare), as: UTF8.self)
        #expect(!bareText.contains("host_truth"))
        #expect(try decoder.decode(StatusDocument.self, from: Data(bareText.utf8)).vms[0].vcpus[0].hostTruth == nil)
    }
}

/// Any JSON key, for a custom key decoding strategy.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
