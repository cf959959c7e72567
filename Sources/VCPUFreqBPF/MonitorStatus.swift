/// What a `VCPUThreadMonitor` has running: which programs are attached, which
/// are missing and why, and whether the util-hint map is pinned. The
/// `description` is what `vcpufreq stats` should print as its header.
public struct MonitorStatus: Equatable, Sendable, CustomStringConvertible {
    public enum State: Equatable, Sendable {
        /// `start()` was not called yet.
        case notStarted
        /// The object is loaded; `attached` lists what is live.
        case running
        /// Nothing could be loaded; the error says why (privileges, a refused
        /// program, a corrupt object). The daemon goes on without BPF.
        case failed(BPFError)
        /// `stop()` detached everything.
        case stopped
    }

    /// An attached program.
    public struct Probe: Equatable, Sendable {
        /// The BPF program (C function name).
        public var program: String
        /// Its hook, e.g. "tp_btf/sched_switch" or "tracepoint/kvm/kvm_mmio".
        public var target: String
    }

    /// A program that is not attached, and why: normal on kernels without the
    /// hook (kvm_exit under PVM is there but never fires; without KVM there
    /// are no kvm tracepoints at all).
    public struct Missing: Equatable, Sendable {
        public var program: String
        public var target: String
        public var reason: String
    }

    public var state: State = .notStarted
    public var attached: [Probe] = []
    public var missing: [Missing] = []
    /// Where the util-hint map is pinned; nil when it is not (not running,
    /// pinning off, or bpffs unavailable: then `missing` says why).
    public var utilHintPinPath: String?
    /// Every map pinned, by path (the util-hint map and the shared-page maps).
    public var pinnedMaps: [String] = []
    /// File systems this monitor mounted ("tracefs at /sys/kernel/tracing").
    public var mounted: [String] = []

    public init() {}

    public var isRunning: Bool { state == .running }

    /// Whether `program` is attached.
    public func isAttached(_ program: String) -> Bool { attached.contains { $0.program == program } }

    /// The reason `program` is missing, if it is.
    public func missingReason(_ program: String) -> String? { missing.first { $0.program == program }?.reason }

    /// One line for the daemon's status (`daemon.bpf`) and log: "loaded: …"
    /// with what is attached, pinned and missing, or why nothing is loaded.
    public var summary: String {
        switch state {
        case .notStarted: return "not loaded: not started"
        case .stopped: return "not loaded: stopped"
        case .failed(let error): return "not loaded: \(error)"
        case .running:
            var text = "loaded: \(attached.count) programs attached ("
                + attached.map { $0.target.split(separator: "/").last.map(String.init) ?? $0.target }
                .joined(separator: ", ") + ")"
            text += utilHintPinPath.map { "; util-hint map pinned at \($0)" } ?? "; util-hint map not pinned"
            let pagePins = pinnedMaps.filter { $0 != utilHintPinPath }
            if !pagePins.isEmpty {
                text += "; shared-page maps pinned (" + pagePins.compactMap { $0.split(separator: "/").last.map(String.init) }
                    .joined(separator: ", ") + ")"
            }
            for entry in missing { text += "; \(entry.target) missing: \(entry.reason)" }
            return text
        }
    }

    public var description: String {
        var lines: [String] = []
        switch state {
        case .notStarted: lines.append("BPF monitor: not started")
        case .running: lines.append("BPF monitor: running")
        case .stopped: lines.append("BPF monitor: stopped")
        case .failed(let error): lines.append("BPF monitor: not available: \(error)")
        }
        for probe in attached { lines.append("  attached  \(probe.target) (\(probe.program))") }
        for entry in missing { lines.append("  missing   \(entry.target) (\(entry.program)): \(entry.reason)") }
        if let utilHintPinPath { lines.append("  util-hint map pinned at \(utilHintPinPath)") }
        for path in pinnedMaps where path != utilHintPinPath { lines.append("  pinned    \(path)") }
        for mount in mounted { lines.append("  mounted   \(mount)") }
        return lines.joined(separator: "\n")
    }
}
