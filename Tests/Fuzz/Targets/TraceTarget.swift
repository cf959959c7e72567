// The trace parser (`vcpufreq device replay`) on any file, then the replay
// of what it parsed.
//
// Every line with content (after the `#` comment) is either an access or a
// diagnostic naming that line, never both, never neither; accesses keep the
// file's order and the parser's bounds (vCPU index, width). What was parsed
// prints back (as the demo writes traces) to text that parses to the same
// accesses without a diagnostic. Replaying it on a fixture VM never gives a
// hint above the VM's cap or for a vCPU the VM does not have.
@testable import VCPUFreqCore

enum TraceTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        let (trace, diagnostics) = Trace.parse(text)

        // Lines as bytes, whatever Swift makes of "\r\n" (one Character).
        let lines = Array(text.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let withContent = Set(lines.indices.filter { index in
            lines[index].prefix { $0 != UInt8(ascii: "#") }.contains { !" \t\r".utf8.contains($0) }
        }.map { $0 + 1 })
        let parsed = trace.lines.map(\.number)
        let diagnosed = diagnostics.compactMap(\.line)
        invariant(diagnosed.count == diagnostics.count, "a diagnostic without a line: \(diagnostics)")
        invariant(parsed == parsed.sorted() && Set(parsed).count == parsed.count, "lines out of order: \(parsed)")
        invariant(Set(parsed).isDisjoint(with: diagnosed), "a line both parsed and diagnosed")
        invariant(Set(parsed).union(diagnosed) == withContent && parsed.count + diagnosed.count == withContent.count,
                  "\(withContent.count) lines with content, \(parsed.count) parsed, \(diagnosed.count) diagnosed")
        for diagnostic in diagnostics {
            invariant(diagnostic.severity == .error && !diagnostic.message.isEmpty, "diagnostic \(diagnostic)")
        }
        for line in trace.lines {
            switch line.operation {
            case .read(let vcpu, _, let width), .write(let vcpu, _, _, let width):
                invariant((0...Trace.maximumVCPUIndex).contains(vcpu) && (1...Trace.maximumWidth).contains(width),
                          "line \(line.number) parsed out of bounds: \(line.operation)")
            case .wait:
                break
            }
        }

        let printed = trace.lines.map { GuestSession.format($0.operation) }.joined(separator: "\n")
        let (again, problems) = Trace.parse(printed)
        invariant(problems.isEmpty && again.lines.map(\.operation) == trace.lines.map(\.operation),
                  "the parsed trace printed as\n\(printed)\nparses back differently: \(problems)")

        // The replay, as `vcpufreq device replay` runs it (bounded, so one
        // input stays a fraction of a millisecond).
        let vm = FuzzFixtures.models[bytes.count % FuzzFixtures.models.count]
        let limits = PolicyLimits(vm: vm)
        var session = ReplaySession(vm: vm)
        session.run(Trace(lines: Array(trace.lines.prefix(1024))))
        for event in session.events {
            guard case .hintApplied(_, let vcpu, let hint, _) = event else { continue }
            invariant(vm.vcpus.indices.contains(vcpu), "hint for vCPU \(vcpu) of a \(vm.vcpuCount)-vCPU VM")
            invariant(hint.utilMin <= hint.utilMax && hint.utilMax <= limits.utilCap, "hint \(hint) above the cap \(limits.utilCap)")
        }
        invariant(session.device.counters.accesses == UInt64(session.events.filter {
            if case .access = $0 { return true } else { return false }
        }.count), "device counters disagree with the replayed accesses")
    }

    /// The demo's trace of every fixture VM (`vcpufreq demo --write-trace`),
    /// its driver probe alone, and a file with every form and every mistake.
    static func seeds() -> [FuzzSeed] {
        var seeds = FuzzFixtures.models.flatMap { vm -> [FuzzSeed] in
            let session = GuestSession(vm: vm)
            let probe = (session.phases.first?.lines ?? []).map { GuestSession.format($0.operation) }.joined(separator: "\n")
            return [
                FuzzSeed(name: "demo-\(vm.name).trace", bytes: Array(session.text.utf8)),
                FuzzSeed(name: "probe-\(vm.name).trace", bytes: Array(probe.utf8)),
            ]
        }
        seeds.append(FuzzSeed(name: "forms.trace", bytes: Array("""
            # every form
            0 r 0x8
            0 w 0xc 2        # select entry 2
            1 r 0x10 4
            3 w 0x4 0x1B7740 4
            wait 1500
            \t2 w 0x880008 1 8\r
            0 w 0x4 0xFFFFFFFFFFFFFFFF 8
            # and every mistake
            0 x 0x8
            0 r
            0 w 0x4
            zero r 0x8
            0 r 0x8 3 9
            0 r 0x8 17
            0 w 0x4 18446744073709551616
            wait soon
            99999999999 r 0

            """.utf8)))
        return seeds
    }
}
