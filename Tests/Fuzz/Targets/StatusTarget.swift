// The status document (STATUS_OK's JSON) as the readers decode it: the
// client library (`vcpufreq status`, `vcpufreq stats`) and the reference
// VMM, then `vcpufreq stats`' report of two samples.
//
// Any bytes: each reader either decodes a document, which then survives the
// daemon's encoder and both readers unchanged, or refuses with a reason.
// Built documents (first byte below 16), what a daemon can send: each
// reader decodes the daemon's encoding to the very document
// (decode(encode(x)) == x); the stats report of the document and a later
// sample has, per thread, an interval only when no counter went backwards,
// and then a runtime share within 0...1 and finite, non-negative rates.
import Foundation
import VCPUFreqBPF
@testable import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqProtocol
@testable import VCPUFreqServer
@testable import VCPUFreqVMM

enum StatusTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        if let first = bytes.first, first < 16 {
            var input = FuzzInput(bytes)
            _ = input.byte()
            let document = self.document(&input)
            checkRoundTrip(document)
            checkReport(earlier: document, later: later(document, &input))
        } else {
            let json = Array(bytes)
            do throws(ClientError) {
                let document = try VCPUFreqClient.decodeStatus(json)
                checkRoundTrip(document)
                checkReport(earlier: document, later: document)
            } catch {
                invariant(!error.description.isEmpty, "the client refused a document without a reason")
            }
            do {
                let document = try StatusDecoding.decode(json)
                checkRoundTrip(document)
            } catch {
                invariant(!"\(error)".isEmpty, "the reference VMM refused a document without a reason")
            }
        }
    }

    static func checkRoundTrip(_ document: StatusDocument) {
        let json = Server.statusJSON(document)
        let client = Result { () throws(ClientError) in try VCPUFreqClient.decodeStatus(json) }
        invariant(client == .success(document),
                  "the client decodes the daemon's \(String(decoding: json, as: UTF8.self)) as \(client), not \(document)")
        let vmm = Result { try StatusDecoding.decode(json) }
        invariant((try? vmm.get()) == document,
                  "the reference VMM decodes the daemon's \(String(decoding: json, as: UTF8.self)) as \(vmm), not \(document)")
    }

    static func checkReport(earlier: StatusDocument, later: StatusDocument) {
        let report = StatsReport(earlier: earlier, later: later)
        invariant(report.vms.map(\.id) == later.vms.map(\.id), "report VMs \(report.vms.map(\.id))")
        for (vm, reported) in zip(later.vms, report.vms) {
            invariant(reported.vcpus.count == vm.vcpus.count, "VM \(vm.id): \(reported.vcpus.count) vCPUs reported")
            for (vcpu, row) in zip(vm.vcpus, reported.vcpus) {
                guard let host = row.host else { continue }
                let before = earlier.vms.first { $0.id == vm.id }?.vcpus.first { $0.index == vcpu.index && $0.tid == vcpu.tid }
                guard let old = before?.hostTruth, let new = vcpu.hostTruth else {
                    invariant(false, "vCPU \(vcpu.index) of VM \(vm.id) has an interval without two samples")
                    continue
                }
                invariant(new.sampledAtNanoseconds > old.sampledAtNanoseconds && new.runtimeNanoseconds >= old.runtimeNanoseconds
                          && new.runDelayCount >= old.runDelayCount && new.migrations >= old.migrations,
                          "an interval although a counter went backwards: \(old) → \(new)")
                invariant(host.intervalSeconds > 0 && host.intervalSeconds.isFinite, "interval \(host.intervalSeconds) s")
                invariant((0...1).contains(host.runtimeShare), "runtime share \(host.runtimeShare)")
                invariant(host.runs == new.runDelayCount - old.runDelayCount, "runs \(host.runs)")
                if let p50 = host.runDelayP50Microseconds, let p99 = host.runDelayP99Microseconds {
                    invariant(p50 <= p99, "run delay p50 \(p50) µs above p99 \(p99) µs")
                }
                if let mean = host.runDelayMeanMicroseconds { invariant(mean.isFinite && mean >= 0, "mean run delay \(mean)") }
                let rates = host.exitsPerSecond
                let all = [rates.userspace, rates.interrupted, rates.kvm, rates.mmioReads, rates.mmioWrites,
                           rates.mmioUnsatisfiedReads, rates.pioIn, rates.pioOut] + rates.byReason.map(\.perSecond)
                invariant(all.allSatisfy { $0.isFinite && $0 >= 0 }, "exit rates \(rates)")
            }
        }
    }

    // MARK: Built documents

    /// Keys the daemon writes into its dictionaries (Server+Status.swift).
    static let capabilityKeys = ["uclamp", "cgroup_uclamp", "eevdf_slice", "nice", "affinity", "bpf_map"]

    static func document(_ input: inout FuzzInput) -> StatusDocument {
        var capabilities: [String: String] = [:]
        for key in capabilityKeys where input.bool() { capabilities[key] = input.text(maximum: 40) }
        let daemon = StatusDocument.Daemon(
            version: input.text(maximum: 16), pid: input.integer(), uptimeSeconds: Double(input.integer(UInt32.self)) / 1000,
            actuators: input.text(maximum: 40), actuatorNotes: (0..<input.index(below: 3)).map { _ in input.text(maximum: 40) },
            capabilities: capabilities, bpf: input.text(maximum: 40), dryRun: input.bool(),
            connections: Int(input.integer(Int32.self)), vcpus: Int(input.integer(Int16.self)),
            recoveredThreads: Int(input.integer(Int16.self)))
        let vms = (0..<input.index(below: 4)).map { _ -> StatusDocument.VM in
            var invalid: [String: UInt64] = [:]
            for kind in InvalidAccess.allCases where input.byte() < 32 { invalid[kind.description] = input.integer() }
            return StatusDocument.VM(
                id: input.integer(), name: input.text(maximum: 20), profile: input.text(maximum: 20), peerPID: input.integer(),
                peerUID: input.integer(), actuators: input.text(maximum: 40), kickMode: input.element(of: KickMode.allCases).rawValue,
                polling: input.bool(), sharedMapped: input.bool(), mirrorMapped: input.bool(),
                counters: StatusDocument.Counters(
                    accesses: input.integer(), requests: input.integer(), kicks: input.integer(), polls: input.integer(),
                    invalidAccesses: input.integer(), actuationErrors: input.integer(), threadsGone: input.integer(),
                    restores: input.integer()),
                invalidAccesses: invalid,
                vcpus: (0..<input.index(below: 5)).map { index in vcpu(&input, index: index) })
        }
        return StatusDocument(daemon: daemon, vms: vms)
    }

    static func vcpu(_ input: inout FuzzInput, index: Int) -> StatusDocument.VCPU {
        let optional = input.byte()
        var vcpu = StatusDocument.VCPU(
            index: input.bool() ? index : Int(input.integer(Int16.self)), tid: input.integer(), domain: input.integer(),
            lastRequest: optional & 1 != 0 ? input.text(maximum: 40) : nil, utilMin: optional & 2 != 0 ? input.integer() : nil,
            utilMax: optional & 4 != 0 ? input.integer() : nil, latency: optional & 8 != 0 ? input.text(maximum: 20) : nil,
            cpus: optional & 16 != 0 ? input.text(maximum: 20) : nil, currentPerformanceKHz: input.integer(), capped: input.bool(),
            requests: input.integer(), kicks: input.integer(), hintsApplied: input.integer(), invalidAccesses: input.integer(),
            actuationErrors: input.integer())
        if optional & 32 != 0 {
            vcpu.hostTruth = StatusDocument.HostTruth(
                sampledAtNanoseconds: input.integer(), runtimeNanoseconds: input.integer(), onCPU: input.bool(),
                wakeups: input.integer(), voluntarySwitches: input.integer(), involuntarySwitches: input.integer(),
                migrations: input.integer(), lastCPU: input.bool() ? Int(input.integer(Int16.self)) : nil,
                runDelaySumNanoseconds: input.integer(), runDelayCount: input.integer(),
                runDelayBuckets: (0..<input.index(below: 40)).map { _ in UInt64(input.integer(UInt16.self)) },
                exits: StatusDocument.Exits(
                    kvmExits: input.integer(),
                    userspace: (0..<input.index(below: 4)).map { _ in
                        StatusDocument.ReasonCount(reason: input.integer(), name: input.text(maximum: 12), count: input.integer())
                    },
                    userspaceInterrupted: input.integer(), userspaceErrors: input.integer(), mmioReads: input.integer(),
                    mmioWrites: input.integer(), mmioUnsatisfiedReads: input.integer(), pioIn: input.integer(),
                    pioOut: input.integer()))
        }
        return vcpu
    }

    /// A later sample: every thread's counters moved on by what the input
    /// says (wrapping, so some go backwards), some VMs and threads gone.
    static func later(_ document: StatusDocument, _ input: inout FuzzInput) -> StatusDocument {
        var later = document
        later.vms = document.vms.filter { _ in input.byte() < 224 }
        for vm in later.vms.indices {
            for vcpu in later.vms[vm].vcpus.indices {
                guard var truth = later.vms[vm].vcpus[vcpu].hostTruth else { continue }
                func step(_ value: inout UInt64) { value &+= input.bool() ? UInt64(input.integer(UInt16.self)) : input.integer() }
                step(&truth.sampledAtNanoseconds)
                step(&truth.runtimeNanoseconds)
                step(&truth.runDelayCount)
                step(&truth.runDelaySumNanoseconds)
                step(&truth.migrations)
                step(&truth.voluntarySwitches)
                step(&truth.involuntarySwitches)
                for bucket in truth.runDelayBuckets.indices { step(&truth.runDelayBuckets[bucket]) }
                if input.bool() { truth.runDelayBuckets += (0..<input.index(below: 8)).map { _ in UInt64(input.byte()) } }
                step(&truth.exits.mmioReads)
                step(&truth.exits.pioOut)
                for reason in truth.exits.userspace.indices { step(&truth.exits.userspace[reason].count) }
                later.vms[vm].vcpus[vcpu].hostTruth = truth
            }
        }
        return later
    }

    // MARK: Seeds

    /// Built documents, and the JSON of a real one: what a dry-run daemon
    /// in this process answers STATUS with after a VM attached and its
    /// guest probed the device (the daemon target's session).
    static func seeds() -> [FuzzSeed] {
        var seeds: [FuzzSeed] = []
        if let json = DaemonTarget.statusOfProbedVM() {
            seeds.append(FuzzSeed(name: "daemon-status.json", bytes: json))
        }
        seeds.append(FuzzSeed(name: "empty.json", bytes: Server.statusJSON(StatusDocument(
            daemon: .init(version: "vcpufreq 0.1.0", pid: 1, uptimeSeconds: 1.5, actuators: "clamp=none", actuatorNotes: [],
                          capabilities: ["uclamp": "unavailable: EOPNOTSUPP"], bpf: "not loaded", dryRun: true, connections: 1,
                          vcpus: 0, recoveredThreads: 0),
            vms: []))))
        // Built: a fixed pseudo-random stream (every field some value).
        let built: [UInt8] = [0] + (0..<2048).map { UInt8(truncatingIfNeeded: $0 &* 167 &+ $0 >> 3) }
        seeds.append(FuzzSeed(name: "built", bytes: built))
        return seeds
    }
}
