import VCPUFreqBenchSupport

/// What one row measured in one round, as raw sums, so rounds add up: the
/// benchmark runs every path of a shape in turn, several rounds over, and a
/// burst of other work on the machine then lands on every path alike
/// instead of on one (interleaved A/B runs).
struct RowMeasurement {
    var warmupAllocations: UInt64?
    var latency = LatencyHistogram()
    var latencyAllocations: MallocCounts?
    var latencyUsage: ThreadUsage?
    var completed: UInt64 = 0
    var windowNanoseconds: UInt64 = 0
    var loaded = LatencyHistogram()
    var allocations: MallocCounts?
    var usage: ThreadUsage?
    var generatorCPUNanoseconds: UInt64?
    var doorbellWrites: UInt64 = 0
    var daemonCounted: DaemonBenchReport.DaemonCounts?
    var generatorIssued: UInt64 = 0

    /// Adds another round of the same row.
    mutating func add(_ other: RowMeasurement) {
        warmupAllocations = Self.sum(warmupAllocations, other.warmupAllocations, &+)
        latency.merge(other.latency)
        latencyAllocations = Self.sum(latencyAllocations, other.latencyAllocations) { $0.adding($1) }
        latencyUsage = Self.sum(latencyUsage, other.latencyUsage) { $0.adding($1) }
        completed &+= other.completed
        windowNanoseconds &+= other.windowNanoseconds
        loaded.merge(other.loaded)
        allocations = Self.sum(allocations, other.allocations) { $0.adding($1) }
        usage = Self.sum(usage, other.usage) { $0.adding($1) }
        generatorCPUNanoseconds = Self.sum(generatorCPUNanoseconds, other.generatorCPUNanoseconds, &+)
        doorbellWrites &+= other.doorbellWrites
        daemonCounted = Self.sum(daemonCounted, other.daemonCounted) { $0.adding($1) }
        generatorIssued &+= other.generatorIssued
    }

    /// Both, added; one when the other was not measured.
    static func sum<T>(_ a: T?, _ b: T?, _ add: (T, T) -> T) -> T? {
        guard let a else { return b }
        guard let b else { return a }
        return add(a, b)
    }

    /// The row of the report: rates and per-request figures from the sums.
    func row(shape: VMShape, path: BenchPath, variant: BenchVariant) -> DaemonBenchReport.Row? {
        guard let latencySummary = latency.summary else { return nil }
        let completed = Double(max(self.completed, 1))
        let window = Double(max(windowNanoseconds, 1))
        let samples = Double(max(latency.count, 1))
        return DaemonBenchReport.Row(
            vms: shape.vms, vcpusPerVM: shape.vcpusPerVM, path: path, variant: variant,
            warmupAllocations: warmupAllocations, latency: latencySummary,
            latencyAllocationsPerRequest: latencyAllocations.map { Double($0.allocations) / samples },
            latencyDaemonCPUMicrosecondsPerRequest: latencyUsage.map { Double($0.cpuNanoseconds) / 1000 / samples },
            requestsPerSecond: Double(self.completed) / window * 1e9, loadedLatency: loaded.summary,
            allocationsPerRequest: allocations.map { Double($0.allocations) / completed }, allocations: allocations,
            daemonCPUMicrosecondsPerRequest: usage.map { Double($0.cpuNanoseconds) / 1000 / completed },
            daemonWakeupsPerRequest: usage.map { Double($0.voluntarySwitches) / completed },
            daemonCPUPercent: usage.map { Double($0.cpuNanoseconds) / window * 100 },
            generatorCPUPercent: generatorCPUNanoseconds.map { Double($0) / window * 100 },
            doorbellWritesPerRequest: Double(doorbellWrites) / completed, daemonCounted: daemonCounted,
            generatorIssued: generatorIssued, ratios: nil)
    }
}

extension MallocCounts {
    func adding(_ other: MallocCounts) -> MallocCounts {
        MallocCounts(
            malloc: malloc &+ other.malloc, calloc: calloc &+ other.calloc, realloc: realloc &+ other.realloc,
            memalign: memalign &+ other.memalign, free: free &+ other.free, bytes: bytes &+ other.bytes)
    }
}

extension ThreadUsage {
    func adding(_ other: ThreadUsage) -> ThreadUsage {
        ThreadUsage(
            cpuNanoseconds: cpuNanoseconds &+ other.cpuNanoseconds,
            voluntarySwitches: voluntarySwitches &+ other.voluntarySwitches,
            involuntarySwitches: involuntarySwitches &+ other.involuntarySwitches)
    }
}

extension DaemonBenchReport.DaemonCounts {
    func adding(_ other: Self) -> Self {
        Self(
            requests: requests &+ other.requests, kicks: kicks &+ other.kicks, polls: polls &+ other.polls,
            actuationErrors: actuationErrors &+ other.actuationErrors)
    }
}
