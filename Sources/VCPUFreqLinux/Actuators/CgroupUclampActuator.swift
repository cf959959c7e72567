import SystemPackage
import VCPUFreqCore

/// Utilization clamps per performance domain through cgroup v2: each
/// domain's vCPU threads live in a threaded child group
/// `<root>/<parent>/<vm>/domain<N>` whose `cpu.uclamp.min`/`cpu.uclamp.max`
/// carry the domain's clamp. Works where per-thread uclamp is refused to
/// non-root VMMs, and one write covers a whole domain.
///
/// cgroup v2 rules shape the steps: a thread may only move between groups of
/// one threaded subtree, so the VMM process first moves into `<vm>` (which
/// becomes the threaded domain), then each vCPU thread into its
/// `domain<N>` (type `threaded`). Restore moves the process back to its
/// original group once its last thread is restored, then removes the groups.
public final class CgroupUclampActuator: ThreadActuator {
    public let facet = ActuatorFacet.clamp
    public let name = "cgroup-uclamp"

    /// The cgroup2 mount point (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid hosts).
    public let root: String
    /// Our subtree below the root, e.g. `vcpufreq`.
    public let parent: String
    let files: any CgroupFiles

    /// A domain group and the last values written to it.
    final class DomainGroup {
        let vm: String
        let domain: Int
        let directory: String
        let minimumPath: String
        let maximumPath: String
        var members = 0
        var writtenMin: UInt16?
        var writtenMax: UInt16?
        /// Opened at the first apply, kept for the group's life.
        var minimumFile: (any CgroupControlFile)?
        var maximumFile: (any CgroupControlFile)?

        init(vm: String, domain: Int, directory: String) {
            self.vm = vm
            self.domain = domain
            self.directory = directory
            minimumPath = directory + "/cpu.uclamp.min"
            maximumPath = directory + "/cpu.uclamp.max"
        }
    }

    /// Groups are few (VMs × domains) and only searched at attach/restore;
    /// `apply` finds its group through `groupIndex`.
    private var groups: [DomainGroup] = []
    /// VMM processes moved into their VM group: (vm, pid, original path, threads inside).
    private var movedProcesses: [(vm: String, pid: Int32, threads: Int)] = []

    public init(root: String, parent: String = "vcpufreq", files: any CgroupFiles = KernelCgroupFiles()) {
        self.root = root.hasSuffix("/") ? String(root.dropLast()) : root
        self.parent = Self.safeComponent(parent)
        self.files = files
    }

    // MARK: Paths

    /// A VM or parent name made safe as one path component: anything but
    /// letters, digits, `-`, `_`, `.` becomes `_`, and `.`/`..` are refused.
    public static func safeComponent(_ name: String) -> String {
        let mapped = String(name.unicodeScalars.map { scalar -> Character in
            let allowed = (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z")
                || (scalar >= "0" && scalar <= "9") || scalar == "-" || scalar == "_" || scalar == "."
            return allowed ? Character(scalar) : "_"
        })
        if mapped.isEmpty || mapped == "." || mapped == ".." { return "_" + mapped }
        return mapped
    }

    public var parentDirectory: String { root + "/" + parent }
    public func vmDirectory(_ vm: String) -> String { parentDirectory + "/" + Self.safeComponent(vm) }
    public func domainDirectory(vm: String, domain: Int) -> String { vmDirectory(vm) + "/domain\(domain)" }

    // MARK: Formatting

    /// `cpu.uclamp.*` takes a percentage with at most two decimals. The
    /// kernel turns it back into a utilization as round(percent × 1024 / 100),
    /// so rounding to the nearest hundredth here round-trips every 0...1024.
    /// Writes into `buffer` (8 bytes suffice: "100.00"); returns the length.
    public static func formatPercent(utilization: UInt16, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let util = UInt32(min(utilization, 1024))
        let hundredths = (util * 10_000 + 512) / 1024
        var digits: (UInt8, UInt8, UInt8) = (0, 0, 0)
        var count = 0
        var whole = hundredths / 100
        repeat {
            let digit = UInt8(whole % 10)
            switch count {
            case 0: digits.0 = digit
            case 1: digits.1 = digit
            default: digits.2 = digit
            }
            count += 1
            whole /= 10
        } while whole > 0
        var length = 0
        func put(_ byte: UInt8) {
            buffer[length] = byte
            length += 1
        }
        if count == 3 { put(UInt8(ascii: "0") + digits.2) }
        if count >= 2 { put(UInt8(ascii: "0") + digits.1) }
        put(UInt8(ascii: "0") + digits.0)
        put(UInt8(ascii: "."))
        put(UInt8(ascii: "0") + UInt8((hundredths % 100) / 10))
        put(UInt8(ascii: "0") + UInt8(hundredths % 10))
        return length
    }

    /// The text written for util_min (`50.00`) or util_max (`max` for 1024).
    public static func uclampText(utilization: UInt16, isMaximum: Bool) -> String {
        if isMaximum && utilization >= 1024 { return "max" }
        var bytes = [UInt8](repeating: 0, count: 8)
        let length = bytes.withUnsafeMutableBytes { formatPercent(utilization: utilization, into: $0) }
        return String(decoding: bytes[0..<length], as: UTF8.self)
    }

    // MARK: ThreadActuator

    public func capture(_ target: ThreadTarget, into snapshot: inout ThreadSnapshot) throws(Errno) {
        let memberships = ProcFS().cgroups(ofThread: target.tid)
        guard !memberships.isEmpty else { throw Errno.noSuchProcess }
        snapshot.cgroup = .init(unifiedPath: memberships.unifiedPath, v1CPUPath: memberships.v1Path(controller: "cpu"))
    }

    public func prepare(_ target: ThreadTarget, snapshot: ThreadSnapshot) throws(Errno) {
        let vmDirectory = vmDirectory(target.vm)
        try files.makeDirectory(parentDirectory)
        try files.write("+cpu", to: root + "/cgroup.subtree_control")
        try files.makeDirectory(vmDirectory)
        try files.write("+cpu", to: parentDirectory + "/cgroup.subtree_control")
        if let index = movedProcesses.firstIndex(where: { $0.vm == target.vm && $0.pid == target.pid }) {
            movedProcesses[index].threads += 1
        } else {
            try files.write("\(target.pid)", to: vmDirectory + "/cgroup.procs")
            movedProcesses.append((target.vm, target.pid, 1))
        }
        let group = try domainGroup(vm: target.vm, domain: target.domain)
        try files.write("\(target.tid)", to: group.directory + "/cgroup.threads")
        group.members += 1
    }

    private func domainGroup(vm: String, domain: Int) throws(Errno) -> DomainGroup {
        if let group = groups.first(where: { $0.vm == vm && $0.domain == domain }) { return group }
        let group = DomainGroup(vm: vm, domain: domain, directory: domainDirectory(vm: vm, domain: domain))
        try files.makeDirectory(group.directory)
        try files.write("threaded", to: group.directory + "/cgroup.type")
        try files.write("+cpu", to: vmDirectory(vm) + "/cgroup.subtree_control")
        groups.append(group)
        return group
    }

    /// Writes the domain's clamps; a value equal to the last one written to
    /// the group (another vCPU of the domain already set it) costs nothing.
    public func apply(
        _ hint: HostHint, previous: HostHint?, to target: ThreadTarget, snapshot: ThreadSnapshot
    ) throws(Errno) {
        guard let group = groups.first(where: { $0.vm == target.vm && $0.domain == target.domain }) else {
            throw Errno.noSuchFileOrDirectory  // apply before prepare: a controller bug, reported not trapped
        }
        let low = min(hint.utilMin, 1024)
        let high = min(max(hint.utilMax, low), 1024)
        // Raise max before min and lower min before max so min <= max holds between writes.
        if high >= (group.writtenMax ?? 1024) {
            try write(maximum: high, group)
            try write(minimum: low, group)
        } else {
            try write(minimum: low, group)
            try write(maximum: high, group)
        }
    }

    private func write(minimum value: UInt16, _ group: DomainGroup) throws(Errno) {
        guard group.writtenMin != value else { return }
        if group.minimumFile == nil { group.minimumFile = try files.openControl(group.minimumPath) }
        if let file = group.minimumFile { try writeValue(value, isMaximum: false, to: file) }
        group.writtenMin = value
    }

    private func write(maximum value: UInt16, _ group: DomainGroup) throws(Errno) {
        guard group.writtenMax != value else { return }
        if group.maximumFile == nil { group.maximumFile = try files.openControl(group.maximumPath) }
        if let file = group.maximumFile { try writeValue(value, isMaximum: true, to: file) }
        group.writtenMax = value
    }

    /// Formats on the stack and writes once: no allocation, one syscall.
    private func writeValue(_ value: UInt16, isMaximum: Bool, to file: any CgroupControlFile) throws(Errno) {
        let result = withUnsafeTemporaryAllocation(byteCount: 8, alignment: 1) { buffer in
            let length: Int
            if isMaximum && value >= 1024 {
                for (index, byte) in "max".utf8.enumerated() { buffer[index] = byte }
                length = 3
            } else {
                length = Self.formatPercent(utilization: value, into: buffer)
            }
            return Result { () throws(Errno) in
                try file.write(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<length]))
            }
        }
        try result.get()
    }

    /// Moves the thread out of its domain group. When it was the VMM's last
    /// thread in our groups (or this actuator never saw it: journal recovery
    /// after a crash), the whole process returns to its original group and
    /// the groups it leaves empty are removed.
    public func restore(_ target: ThreadTarget, from snapshot: ThreadSnapshot) throws(Errno) {
        let vmDirectory = vmDirectory(target.vm)
        if let group = groups.first(where: { $0.vm == target.vm && $0.domain == target.domain }) {
            group.members = max(group.members - 1, 0)
        }
        var lastThread = true
        if let index = movedProcesses.firstIndex(where: { $0.vm == target.vm && $0.pid == target.pid }) {
            movedProcesses[index].threads -= 1
            lastThread = movedProcesses[index].threads <= 0
            if lastThread { movedProcesses.remove(at: index) }
        }
        if !lastThread {
            try files.write("\(target.tid)", to: vmDirectory + "/cgroup.threads")
            return
        }
        let original = snapshot.cgroup?.unifiedPath ?? "/"
        let originalDirectory = original == "/" ? root : root + original
        try files.write("\(target.pid)", to: originalDirectory + "/cgroup.procs")
        removeEmptyGroups(vm: target.vm, domain: target.domain)
    }

    /// Removes the VM's groups nobody is in any more; a group still busy
    /// (another VMM process of the same VM name) stays.
    private func removeEmptyGroups(vm: String, domain: Int) {
        let stillUsed = movedProcesses.contains { $0.vm == vm }
        guard !stillUsed else { return }
        var domains = groups.filter { $0.vm == vm }.map(\.domain)
        if !domains.contains(domain) { domains.append(domain) }
        for domain in domains.sorted() {
            try? files.removeDirectory(domainDirectory(vm: vm, domain: domain))
        }
        groups.removeAll { $0.vm == vm }
        try? files.removeDirectory(vmDirectory(vm))
    }
}
