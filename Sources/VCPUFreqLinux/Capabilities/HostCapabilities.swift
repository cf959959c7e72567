import Foundation
import SystemPackage
import VCPUFreqCore

/// A clamp mechanism, in the order an operator prefers them.
public enum ClampMechanism: String, CaseIterable, Codable, Sendable {
    /// Per-thread sched_setattr util clamps.
    case uclamp
    /// Per-domain cgroup v2 cpu.uclamp.*.
    case cgroup
    /// The pinned BPF util-hint map a sched_ext/struct_ops scheduler reads
    /// (VCPUFreqBPF's `BPFMapActuator`; docs/bpf.md). Only a hint: without
    /// such a scheduler nothing enforces it, hence last before `none`.
    case bpfMap = "bpf-map"
    case none
}

/// A latency mechanism, in preference order.
public enum LatencyMechanism: String, CaseIterable, Codable, Sendable {
    case slice, nice, none
}

/// What this host's kernel lets vcpufreq do to vCPU threads, found by
/// trying each call on a scratch thread at start (detect, don't assume).
public struct HostCapabilities: Sendable {
    /// A facet's verdict; the string says why, for the log and `vcpufreq topology probe`.
    public enum Status: Equatable, Sendable, CustomStringConvertible {
        case available(String)
        case unavailable(String)

        public var isAvailable: Bool {
            if case .available = self { return true }
            return false
        }

        public var reason: String {
            switch self {
            case .available(let text), .unavailable(let text): return text
            }
        }

        public var description: String { (isAvailable ? "available: " : "unavailable: ") + reason }
    }

    public var uclamp: Status
    public var cgroupUclamp: Status
    /// The cgroup2 mount point, when there is one.
    public var cgroup2Mount: String?
    public var eevdfSlice: Status
    /// The slice sched_getattr reports for a thread without a custom slice.
    public var defaultSliceNanoseconds: UInt64?
    public var nice: Status
    public var affinity: Status
    /// The BPF util-hint map: detection cannot try it on a scratch thread,
    /// so whoever loads the BPF programs (the daemon) sets it from their
    /// status (`with(bpfMap:)`); until then it is unavailable.
    public var bpfMap: Status

    public init(
        uclamp: Status, cgroupUclamp: Status, cgroup2Mount: String?, eevdfSlice: Status,
        defaultSliceNanoseconds: UInt64?, nice: Status, affinity: Status,
        bpfMap: Status = .unavailable("the BPF programs are not loaded")
    ) {
        self.uclamp = uclamp
        self.cgroupUclamp = cgroupUclamp
        self.cgroup2Mount = cgroup2Mount
        self.eevdfSlice = eevdfSlice
        self.defaultSliceNanoseconds = defaultSliceNanoseconds
        self.nice = nice
        self.affinity = affinity
        self.bpfMap = bpfMap
    }

    /// These capabilities with `bpfMap` replaced.
    public func with(bpfMap status: Status) -> HostCapabilities {
        var copy = self
        copy.bpfMap = status
        return copy
    }

    /// The slice set on the scratch thread to see whether the kernel honours it, µs.
    static let probeSliceMicroseconds: UInt32 = 300

    /// Tries each facet on a scratch thread (and reads procfs and the
    /// cgroup2 mount). Leaves nothing changed: the scratch thread ends.
    public static func detect(procfs: ProcFS = ProcFS(), mountInfoPath: String = "/proc/self/mountinfo") -> HostCapabilities {
        let scratch: ScratchThread
        do {
            scratch = try ScratchThread()
        } catch {
            let reason = Status.unavailable("cannot start a scratch thread: \(describe(error))")
            return HostCapabilities(
                uclamp: reason, cgroupUclamp: reason, cgroup2Mount: nil, eevdfSlice: reason,
                defaultSliceNanoseconds: nil, nice: reason, affinity: reason)
        }
        defer { scratch.stop() }
        let tid = scratch.tid
        let uclamp = detectUclamp(tid: tid)
        let (slice, defaultSlice) = detectSlice(tid: tid, procfs: procfs)
        let mountInfo = (try? FileIO.readText(mountInfoPath)) ?? ""
        let mount = cgroup2MountPoint(mountInfo: mountInfo)
        return HostCapabilities(
            uclamp: uclamp, cgroupUclamp: detectCgroupUclamp(mount: mount, uclamp: uclamp), cgroup2Mount: mount,
            eevdfSlice: slice, defaultSliceNanoseconds: defaultSlice, nice: detectNice(tid: tid),
            affinity: detectAffinity(tid: tid))
    }

    static func describe(_ error: Errno) -> String { "errno \(error.rawValue) (\(error))" }

    static func detectUclamp(tid: Int32) -> Status {
        do {
            try ThreadScheduling.setAttributes(UclampActuator.attributes(utilMin: 0, utilMax: 1024), of: tid)
            return .available("sched_setattr accepts UTIL_CLAMP_MIN|UTIL_CLAMP_MAX")
        } catch .notSupported {
            return .unavailable(
                "sched_setattr with UTIL_CLAMP_MIN|UTIL_CLAMP_MAX fails with EOPNOTSUPP: kernel built without CONFIG_UCLAMP_TASK")
        } catch {
            return .unavailable("sched_setattr with UTIL_CLAMP_MIN|UTIL_CLAMP_MAX fails: \(describe(error))")
        }
    }

    static func detectSlice(tid: Int32, procfs: ProcFS) -> (Status, UInt64?) {
        let original: SchedAttr
        do {
            original = try ThreadScheduling.attributes(of: tid)
        } catch {
            return (.unavailable("sched_getattr fails: \(describe(error))"), nil)
        }
        let defaultSlice = original.policy.isFair ? original.runtimeNanoseconds : nil
        guard procfs.eevdfSliceNanoseconds(ofThread: tid) != nil else {
            return (.unavailable("no se.slice in \(procfs.root)/<tid>/sched: kernel without EEVDF (before 6.6)"), defaultSlice)
        }
        let wanted = UInt64(probeSliceMicroseconds) * 1000
        do {
            try ThreadScheduling.setAttributes(
                LatencyActuator.sliceAttributes(microseconds: probeSliceMicroseconds, original: original), of: tid)
        } catch {
            return (.unavailable("sched_setattr(SCHED_NORMAL, sched_runtime) fails: \(describe(error))"), defaultSlice)
        }
        let seen = procfs.eevdfSliceNanoseconds(ofThread: tid)
        try? ThreadScheduling.setAttributes(LatencyActuator(defaultSliceNanoseconds: defaultSlice).restoreAttributes(original), of: tid)
        guard seen == wanted else {
            let shown = seen.map(String.init) ?? "nothing"
            return (
                .unavailable(
                    "kernel ignores sched_runtime of SCHED_NORMAL (EEVDF custom slices need Linux 6.12+): se.slice is \(shown), not \(wanted)"),
                defaultSlice
            )
        }
        return (.available("sched_runtime sets the EEVDF slice (se.slice read back \(wanted) ns)"), defaultSlice)
    }

    static func detectNice(tid: Int32) -> Status {
        do {
            let original = try ThreadScheduling.nice(of: tid)
            // Lowering nice is what needs privilege; raising it never does.
            try ThreadScheduling.setNice(max(original - 1, -20), of: tid)
            try? ThreadScheduling.setNice(original, of: tid)
            return .available("setpriority(PRIO_PROCESS, tid) may lower nice (root or CAP_SYS_NICE)")
        } catch .notPermitted {
            return .unavailable("lowering a thread's nice needs root or CAP_SYS_NICE (EPERM)")
        } catch {
            return .unavailable("setpriority fails: \(describe(error))")
        }
    }

    static func detectAffinity(tid: Int32) -> Status {
        do {
            let mask = try ThreadScheduling.affinity(of: tid)
            try ThreadScheduling.setAffinity(mask, of: tid)
            return .available("sched_setaffinity works (CPUs \(mask))")
        } catch {
            return .unavailable("sched_setaffinity fails: \(describe(error))")
        }
    }

    static func detectCgroupUclamp(mount: String?, uclamp: Status) -> Status {
        guard let mount else { return .unavailable("no cgroup2 filesystem mounted") }
        let controllers = ((try? FileIO.readText(mount + "/cgroup.controllers")) ?? "")
            .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        guard controllers.contains("cpu") else {
            let list = controllers.isEmpty ? "none" : controllers.joined(separator: " ")
            return .unavailable("cgroup2 at \(mount) has no cpu controller (controllers: \(list))")
        }
        guard uclamp.isAvailable else {
            return .unavailable("cpu.uclamp.* needs CONFIG_UCLAMP_TASK_GROUP, and this kernel lacks even per-task uclamp")
        }
        // Where cpu is already enabled for children, a child shows whether the
        // kernel has cpu.uclamp.* at all (CONFIG_UCLAMP_TASK_GROUP).
        let enabled = ((try? FileIO.readText(mount + "/cgroup.subtree_control")) ?? "")
            .split(whereSeparator: { $0 == " " || $0 == "\n" }).contains("cpu")
        if enabled, let child = firstChildGroup(of: mount) {
            guard FileIO.exists(child + "/cpu.uclamp.min") else {
                return .unavailable("\(child) has the cpu controller but no cpu.uclamp.min: kernel without CONFIG_UCLAMP_TASK_GROUP")
            }
            return .available("cgroup2 at \(mount) has the cpu controller and cpu.uclamp.*")
        }
        return .available("cgroup2 at \(mount) has the cpu controller (cpu.uclamp.* checked when the group is made)")
    }

    static func firstChildGroup(of mount: String) -> String? {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: mount)) ?? []).sorted()
        return names.lazy.map { mount + "/" + $0 }.first { FileStatusProbe.kind(of: $0) == .directory }
    }

    /// The mount point of the (first) cgroup2 filesystem in mountinfo text.
    /// Fields: id parent dev root mountpoint options [optional...] - fstype source super.
    public static func cgroup2MountPoint(mountInfo: String) -> String? {
        for line in mountInfo.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let separator = fields.firstIndex(of: "-"), separator + 1 < fields.count, fields.count > 4,
                fields[separator + 1] == "cgroup2"
            else { continue }
            return unescapeMountPath(String(fields[4]))
        }
        return nil
    }

    /// mountinfo writes space, tab, newline and backslash as \ooo octal.
    static func unescapeMountPath(_ text: String) -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "\\"), index + 3 < utf8.count,
                let value = UInt8(String(decoding: utf8[(index + 1)...(index + 3)], as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The first available mechanism of each preference list, and why the
    /// ones before it were passed over.
    public func plan(
        clamp preferredClamp: [ClampMechanism] = [.uclamp, .cgroup, .bpfMap, .none],
        latency preferredLatency: [LatencyMechanism] = [.slice, .nice, .none],
        affinity wantAffinity: Bool = true
    ) -> ActuationPlan {
        var notes: [String] = []
        var chosenClamp = ClampMechanism.none
        for mechanism in preferredClamp {
            let status: Status
            switch mechanism {
            case .uclamp: status = uclamp
            case .cgroup: status = cgroupUclamp
            case .bpfMap: status = bpfMap
            case .none: status = .available("no clamps")
            }
            if status.isAvailable {
                chosenClamp = mechanism
                break
            }
            notes.append("clamp \(mechanism.rawValue) skipped: \(status.reason)")
        }
        var chosenLatency = LatencyMechanism.none
        for mechanism in preferredLatency {
            let status: Status
            switch mechanism {
            case .slice: status = eevdfSlice
            case .nice: status = nice
            case .none: status = .available("no latency hints")
            }
            if status.isAvailable {
                chosenLatency = mechanism
                break
            }
            notes.append("latency \(mechanism.rawValue) skipped: \(status.reason)")
        }
        let pin = wantAffinity && affinity.isAvailable
        if wantAffinity && !pin { notes.append("affinity skipped: \(affinity.reason)") }
        return ActuationPlan(
            clamp: chosenClamp, latency: chosenLatency, affinity: pin, notes: notes, cgroup2Mount: cgroup2Mount,
            defaultSliceNanoseconds: defaultSliceNanoseconds)
    }
}
