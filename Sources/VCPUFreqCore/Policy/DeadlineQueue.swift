/// The earliest pending timer of every vCPU, in an indexed binary min-heap.
///
/// The policy engine keeps one deadline per vCPU (the earliest of its held
/// change, boost expiry and idle decay). The daemon asks for the VM's
/// earliest deadline after every request to arm a timerfd, so it must be
/// O(1) to read and O(log n) to move one vCPU's deadline, never a scan of
/// all vCPUs. Storage is allocated once in `init`; no operation allocates.
struct DeadlineQueue: Sendable {
    /// Heap of vCPU indices ordered by `deadlines` (ties: lower vCPU first).
    private var heap: [Int]
    /// Position of each vCPU in `heap`, or `absent`.
    private var position: [Int]
    /// Deadline of each vCPU in `heap`, ns; meaningless when absent.
    private var deadlines: [UInt64]
    private var count = 0

    private static let absent = -1

    init(capacity: Int) {
        let size = max(capacity, 0)
        heap = Array(repeating: 0, count: size)
        position = Array(repeating: Self.absent, count: size)
        deadlines = Array(repeating: 0, count: size)
    }

    /// The vCPU with the earliest deadline and that deadline.
    var first: (vcpu: Int, deadline: UInt64)? {
        guard count > 0 else { return nil }
        let vcpu = heap[0]
        return (vcpu, deadlines[vcpu])
    }

    /// The deadline of one vCPU, nil when it has none (or is out of range).
    func deadline(of vcpu: Int) -> UInt64? {
        guard position.indices.contains(vcpu), position[vcpu] != Self.absent else { return nil }
        return deadlines[vcpu]
    }

    /// Sets (or with nil removes) the deadline of one vCPU. Out-of-range
    /// indices are ignored.
    mutating func set(_ vcpu: Int, to deadline: UInt64?) {
        guard position.indices.contains(vcpu) else { return }
        let slot = position[vcpu]
        guard let deadline else {
            if slot != Self.absent { remove(at: slot) }
            return
        }
        if slot == Self.absent {
            heap[count] = vcpu
            position[vcpu] = count
            deadlines[vcpu] = deadline
            count += 1
            siftUp(count - 1)
        } else {
            let old = deadlines[vcpu]
            deadlines[vcpu] = deadline
            if deadline < old { siftUp(slot) } else if deadline > old { siftDown(slot) }
        }
    }

    private mutating func remove(at slot: Int) {
        let vcpu = heap[slot]
        count -= 1
        position[vcpu] = Self.absent
        guard slot != count else { return }
        let moved = heap[count]
        heap[slot] = moved
        position[moved] = slot
        siftUp(slot)
        siftDown(position[moved])
    }

    private func precedes(_ a: Int, _ b: Int) -> Bool {
        deadlines[a] < deadlines[b] || (deadlines[a] == deadlines[b] && a < b)
    }

    private mutating func swapSlots(_ i: Int, _ j: Int) {
        heap.swapAt(i, j)
        position[heap[i]] = i
        position[heap[j]] = j
    }

    private mutating func siftUp(_ start: Int) {
        var slot = start
        while slot > 0 {
            let parent = (slot - 1) / 2
            guard precedes(heap[slot], heap[parent]) else { return }
            swapSlots(slot, parent)
            slot = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var slot = start
        while true {
            let left = 2 * slot + 1
            guard left < count else { return }
            let right = left + 1
            var best = left
            if right < count, precedes(heap[right], heap[left]) { best = right }
            guard precedes(heap[best], heap[slot]) else { return }
            swapSlots(slot, best)
            slot = best
        }
    }
}
