import Testing
@testable import VCPUFreqCore

@Suite struct PolicyDeadlineQueueTests {
    /// Random sets and removals against a plain array of optionals: the first
    /// entry is always the earliest deadline (lowest vCPU on ties).
    @Test(arguments: [1, 2, 7, 64, 1024], [UInt64(1), 2, 3])
    func agreesWithANaiveModel(capacity: Int, seed: UInt64) {
        var random = PolicyPRNG(seed: seed &* 7919 &+ UInt64(capacity))
        var queue = DeadlineQueue(capacity: capacity)
        var model: [UInt64?] = Array(repeating: nil, count: capacity)
        var mismatches = 0
        for _ in 0..<2000 {
            let vcpu = Int.random(in: -1...capacity, using: &random)  // includes both out-of-range neighbours
            // Few distinct values, so ties are common.
            let deadline: UInt64? = Bool.random(using: &random) && random.next() % 4 == 0 ? nil : UInt64.random(in: 0...20, using: &random)
            queue.set(vcpu, to: deadline)
            if model.indices.contains(vcpu) { model[vcpu] = deadline }
            let expected = model.enumerated().compactMap { index, value in value.map { (vcpu: index, deadline: $0) } }
                .min { ($0.deadline, $0.vcpu) < ($1.deadline, $1.vcpu) }
            let first = queue.first
            if first?.vcpu != expected?.vcpu || first?.deadline != expected?.deadline { mismatches += 1 }
            if queue.deadline(of: vcpu) != (model.indices.contains(vcpu) ? model[vcpu] : nil) { mismatches += 1 }
        }
        #expect(mismatches == 0)
        for vcpu in 0..<capacity { #expect(queue.deadline(of: vcpu) == model[vcpu]) }
    }

    @Test func drainingInOrderVisitsDeadlinesAscending() {
        var queue = DeadlineQueue(capacity: 6)
        for (vcpu, deadline) in [(0, 50), (1, 10), (2, 30), (3, 10), (4, 40), (5, 20)] as [(Int, UInt64)] { queue.set(vcpu, to: deadline) }
        queue.set(4, to: 5)  // moved earlier
        queue.set(2, to: 60)  // moved later
        queue.set(0, to: nil)  // removed
        var order: [Int] = []
        while let (vcpu, _) = queue.first {
            order.append(vcpu)
            queue.set(vcpu, to: nil)
        }
        #expect(order == [4, 1, 3, 5, 2])
    }
}
