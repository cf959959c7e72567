import VCPUFreqBenchSupport
import VCPUFreqKVM

/// `cur_perf` loads on one vCPU at `address`: N back to back minus none,
/// as for the requests.
struct ReadPath {
    let kind: ReadPathKind
    let vcpu: VCPU
    let address: UInt64

    struct Cost {
        var microsecondsPerRead: Double
        var rounds: [Double]
        var exitsPerRead: Double
        /// What the guest read last (the same value on every path).
        var value: UInt64
    }

    func measure(reads: UInt32, rounds: Int, timeout: Duration) throws(BenchError) -> Cost {
        var perRound: [Double] = []
        var exits: UInt64 = 0
        var value: UInt64 = 0
        for _ in 0..<max(rounds, 1) {
            do {
                let empty = try vcpu.run(script: [.tick(address: address, ticks: 0, spinIterations: 0)], timeout: timeout)
                let full = try vcpu.run(script: [.tick(address: address, ticks: reads, spinIterations: 0)], timeout: timeout)
                perRound.append(max(0, Timing.microseconds(full.duration - empty.duration)) / Double(max(reads, 1)))
                exits += full.exits.total
                value = full.results.first?.lastValue ?? 0
            } catch {
                throw .kvm(operation: "reading \(kind.title)", error)
            }
        }
        return Cost(
            microsecondsPerRead: perRound.sorted()[perRound.count / 2], rounds: perRound,
            exitsPerRead: Double(exits) / (Double(max(reads, 1)) * Double(perRound.count)), value: value)
    }
}
