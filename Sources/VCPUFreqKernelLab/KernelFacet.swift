/// One thing the daemon does to threads, checked on a real kernel by reading
/// the kernel's own state back. Adding a facet to the matrix is adding one
/// type that conforms and one line in `KernelFacets.all`.
public protocol KernelFacet: Sendable {
    /// The key in the report and the matrix column (`uclamp`, `sched_ext`).
    var name: String { get }
    /// Runs the facet's scenarios. A thrown error fails the facet with its description.
    func run(in lab: KernelLab) throws -> FacetResult
}

public enum KernelFacets {
    /// Every facet, in the order they run: those that share the default
    /// daemon first, then the ones that start daemons of their own (and
    /// stop or kill them).
    public static let all: [any KernelFacet] = [
        UclampFacet(), SliceFacet(), NiceFacet(), AffinityFacet(), BPFFacet(), CgroupUclampFacet(), RestoreFacet(),
        SchedExtFacet(),
    ]

    /// The matrix columns, in order: the facets, then any other of `all`.
    public static let names: [String] = {
        let columns = ["uclamp", "cgroup_uclamp", "slice", "nice", "affinity", "bpf", "restore", "sched_ext"]
        return columns + all.map(\.name).filter { !columns.contains($0) }
    }()
}

/// Collects a facet's assertions: every failed expectation is kept (a facet
/// reports all it saw, not the first miss), notes say what was read back.
public struct FacetCheck {
    public private(set) var failures: [String] = []
    public private(set) var notes: [String] = []

    public init() {}

    /// Records `what` as a failure unless `condition` holds.
    public mutating func expect(_ condition: Bool, _ what: @autoclosure () -> String) {
        if !condition { failures.append(Self.failurePrefix + what()) }
    }

    /// Starts every failure among a result's notes.
    public static let failurePrefix = "FAILED: "

    public mutating func note(_ text: String) { notes.append(text) }

    public mutating func fail(_ text: String) { failures.append(Self.failurePrefix + text) }

    /// `verified` (or `absent` when the kernel lacks the facet) unless an expectation failed.
    public func result(absent: Bool = false) -> FacetResult {
        if !failures.isEmpty { return FacetResult(.failed, notes: failures + notes) }
        return FacetResult(absent ? .absent : .verified, notes: notes)
    }
}
