import SystemPackage
import VCPUFreqCore

/// Utilization clamps per performance domain through cgroup v2: each
/// domain's vCPU threads live in a threaded group whose `cpu.uclamp.min` /
/// `cpu.uclamp.max` carry the domain's clamp. Works where per-thread uclamp
/// is refused to non-root VMMs, and one write covers a whole domain.
///
/// Two kernel rules shape the tree (both seen on Linux 7.3, where the first
/// design failed them):
/// - The threads of one process may only be spread over one threaded
///   subtree, and moving a process (`cgroup.procs`) moves all its threads.
///   So the subtree belongs to the VMM *process*, not to a VM: a process
///   with several VMs has all of them in its own subtree (a subtree per VM
///   made the second VM's move take the first VM's threads along, and
///   their restore then failed with EOPNOTSUPP).
/// - A group's `cpu.uclamp.min` is capped by every ancestor's (`max` at the
///   root; a new group has 0). So every ancestor of a domain group says
///   `max`, and the process's other threads (not vCPUs) sit in a leaf of
///   their own with the defaults, where nothing boosts them.
///
/// ```
/// <root>/<parent>/                          cpu.uclamp.min max; holds no task
/// <root>/<parent>/vmm-<pid>/                the process's threaded domain; min max; holds no thread once set up
/// <root>/<parent>/vmm-<pid>/others/         threaded: the VMM's threads that are no vCPU (defaults: 0 / max)
/// <root>/<parent>/vmm-<pid>/<vm>/           threaded; min max
/// <root>/<parent>/vmm-<pid>/<vm>/domain<N>/ threaded: the domain's vCPU threads and their clamp
/// ```
///
/// A thread created later lands where its creator is (a vCPU thread's
/// children share its clamp). Restore moves a thread into `others` while
/// its process has other vCPUs here, and the whole process back to its
/// original group with its last one; groups are removed once empty.
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
        let pid: Int32
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

        init(pid: Int32, vm: String, domain: Int, directory: String) {
            self.pid = pid
            self.vm = vm
            self.domain = domain
            self.directory = directory
            minimumPath = directory + "/cpu.uclamp.min"
            maximumPath = directory + "/cpu.uclamp.max"
        }
    }

    /// A VMM process moved into its subtree: where it came from and how
    /// many of its vCPU threads (per VM) are in our groups.
    struct MovedProcess {
        var pid: Int32
        /// The process's cgroup before we moved it (cgroup v2 path).
        var original: String
        var threadsByVM: [String: Int]
        var threads: Int { threadsByVM.values.reduce(0, +) }
    }

    /// Groups are few (VMs × domains) and only searched at attach/restore;
    /// `apply` finds its group through `groupIndex`.
    private var groups: [DomainGroup] = []
    private var movedProcesses: [MovedProcess] = []
    /// Whether `<parent>` was set up (cpu enabled, min max) by this actuator.
    private var parentReady = false

    /// How many times prepare re-reads the process group's `cgroup.threads`
    /// while moving the VMM's threads into `others` (threads it creates
    /// meanwhile are moved by the next round).
    static let moveRounds = 8

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
    /// The threaded domain of VMM process `pid`.
    public func processDirectory(pid: Int32) -> String { parentDirectory + "/vmm-\(pid)" }
    /// Where the process's threads that are no vCPU go.
    public func othersDirectory(pid: Int32) -> String { processDirectory(pid: pid) + "/others" }
    public func vmDirectory(pid: Int32, vm: String) -> String { processDirectory(pid: pid) + "/" + Self.safeComponent(vm) }
    public func domainDirectory(pid: Int32, vm: String, domain: Int) -> String {
        vmDirectory(pid: pid, vm: vm) + "/domain\(domain)"
    }

    /// The cgroup v2 path (relative to the mount) of a directory of ours.
    func relativePath(_ directory: String) -> String { String(directory.dropFirst(root.count)) }

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

    /// The thread's cgroups. A thread of a process we already moved (its
    /// second VM) is recorded with the process's original group, not ours.
    public func capture(_ target: ThreadTarget, into snapshot: inout ThreadSnapshot) throws(Errno) {
        let memberships = ProcFS().cgroups(ofThread: target.tid)
        guard let unified = files.unifiedPath(ofThread: target.tid) ?? memberships.unifiedPath else {
            guard !memberships.isEmpty else { throw Errno.noSuchProcess }
            snapshot.cgroup = .init(unifiedPath: nil, v1CPUPath: memberships.v1Path(controller: "cpu"))
            return
        }
        var original = unified
        if let moved = movedProcesses.first(where: { $0.pid == target.pid }), isOurs(unified) { original = moved.original }
        snapshot.cgroup = .init(unifiedPath: original, v1CPUPath: memberships.v1Path(controller: "cpu"))
    }

    /// Whether a cgroup v2 path is inside our parent group.
    func isOurs(_ path: String) -> Bool {
        let ours = relativePath(parentDirectory)
        return path == ours || path.hasPrefix(ours + "/")
    }

    public func prepare(_ target: ThreadTarget, snapshot: ThreadSnapshot) throws(Errno) {
        try prepareParent()
        let index: Int
        let movedHere: Bool
        if let known = movedProcesses.firstIndex(where: { $0.pid == target.pid }) {
            index = known
            movedHere = false
        } else {
            let original = snapshot.cgroup?.unifiedPath.flatMap { isOurs($0) ? nil : $0 } ?? "/"
            do {
                try moveIntoOwnSubtree(pid: target.pid)
            } catch {
                try? files.write("\(target.pid)", to: directory(ofCgroup: original) + "/cgroup.procs")
                removeTree(processDirectory(pid: target.pid))
                throw error
            }
            movedProcesses.append(MovedProcess(pid: target.pid, original: original, threadsByVM: [:]))
            index = movedProcesses.count - 1
            movedHere = true
        }
        do {
            let group = try domainGroup(pid: target.pid, vm: target.vm, domain: target.domain)
            try files.write("\(target.tid)", to: group.directory + "/cgroup.threads")
            group.members += 1
            movedProcesses[index].threadsByVM[target.vm, default: 0] += 1
        } catch {
            if movedHere {
                let original = movedProcesses.remove(at: index).original
                try? files.write("\(target.pid)", to: directory(ofCgroup: original) + "/cgroup.procs")
                removeTree(processDirectory(pid: target.pid))
                groups.removeAll { $0.pid == target.pid }
            }
            throw error
        }
    }

    /// `<parent>` with the cpu controller for its children and no cap on their protection.
    private func prepareParent() throws(Errno) {
        guard !parentReady else { return }
        try files.makeDirectory(parentDirectory)
        try files.write("+cpu", to: root + "/cgroup.subtree_control")
        try files.write("+cpu", to: parentDirectory + "/cgroup.subtree_control")
        try files.write("max", to: parentDirectory + "/cpu.uclamp.min")
        parentReady = true
    }

    /// Moves the whole process into `vmm-<pid>`, then each of its threads
    /// into `others`, and only then lifts the group's protection cap.
    private func moveIntoOwnSubtree(pid: Int32) throws(Errno) {
        let process = processDirectory(pid: pid)
        let others = othersDirectory(pid: pid)
        try files.makeDirectory(process)
        try files.write("\(pid)", to: process + "/cgroup.procs")
        try files.makeDirectory(others)
        try files.write("threaded", to: others + "/cgroup.type")
        try files.write("+cpu", to: process + "/cgroup.subtree_control")
        for _ in 0..<Self.moveRounds {
            let left = try files.read(process + "/cgroup.threads").split(whereSeparator: \.isNewline)
            if left.isEmpty { break }
            for tid in left {
                do {
                    try files.write(String(tid), to: others + "/cgroup.threads")
                } catch .noSuchProcess {
                    continue  // exited meanwhile
                }
            }
        }
        try files.write("max", to: process + "/cpu.uclamp.min")
    }

    private func domainGroup(pid: Int32, vm: String, domain: Int) throws(Errno) -> DomainGroup {
        if let group = groups.first(where: { $0.pid == pid && $0.vm == vm && $0.domain == domain }) { return group }
        let vmDirectory = vmDirectory(pid: pid, vm: vm)
        if !groups.contains(where: { $0.pid == pid && $0.vm == vm }) {
            try files.makeDirectory(vmDirectory)
            try files.write("threaded", to: vmDirectory + "/cgroup.type")
            try files.write("max", to: vmDirectory + "/cpu.uclamp.min")
            try files.write("+cpu", to: vmDirectory + "/cgroup.subtree_control")
        }
        let group = DomainGroup(pid: pid, vm: vm, domain: domain, directory: domainDirectory(pid: pid, vm: vm, domain: domain))
        try files.makeDirectory(group.directory)
        try files.write("threaded", to: group.directory + "/cgroup.type")
        groups.append(group)
        return group
    }

    /// Writes the domain's clamps; a value equal to the last one written to
    /// the group (another vCPU of the domain already set it) costs nothing.
    public func apply(
        _ hint: HostHint, previous: HostHint?, to target: ThreadTarget, snapshot: ThreadSnapshot
    ) throws(Errno) {
        guard let group = groups.first(where: { $0.pid == target.pid && $0.vm == target.vm && $0.domain == target.domain })
        else {
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

    /// Moves the thread out of its domain group: into `others` while its
    /// process has other vCPU threads here, else the whole process back to
    /// its original group. Groups left empty are removed. Without state
    /// (journal recovery after a crash: every thread of the process is being
    /// restored) the process goes back and its whole subtree is removed.
    public func restore(_ target: ThreadTarget, from snapshot: ThreadSnapshot) throws(Errno) {
        if let group = groups.first(where: { $0.pid == target.pid && $0.vm == target.vm && $0.domain == target.domain }) {
            group.members = max(group.members - 1, 0)
        }
        guard let index = movedProcesses.firstIndex(where: { $0.pid == target.pid }) else {
            let original = snapshot.cgroup?.unifiedPath.flatMap { isOurs($0) ? nil : $0 } ?? "/"
            defer { removeTree(processDirectory(pid: target.pid)) }
            try moveProcess(target.pid, to: original)
            return
        }
        movedProcesses[index].threadsByVM[target.vm, default: 1] -= 1
        if movedProcesses[index].threadsByVM[target.vm, default: 0] <= 0 {
            movedProcesses[index].threadsByVM.removeValue(forKey: target.vm)
        }
        if movedProcesses[index].threads > 0 {
            defer { removeEmptyGroups(pid: target.pid, vm: target.vm) }
            try files.write("\(target.tid)", to: othersDirectory(pid: target.pid) + "/cgroup.threads")
            return
        }
        let moved = movedProcesses.remove(at: index)
        defer {
            groups.removeAll { $0.pid == target.pid }
            removeTree(processDirectory(pid: target.pid))
        }
        try moveProcess(target.pid, to: moved.original)
    }

    /// Moves the process back to `original`, and with it every other
    /// process found in its subtree: a process the VMM spawned starts in
    /// the group of the thread that spawned it (`others`, or a domain
    /// group), and would keep the subtree from being removed (seen on Linux
    /// 7.3: a daemon started by the VMM after a crash sat in `others`).
    /// Without us it would have started in the VMM's original group.
    private func moveProcess(_ pid: Int32, to original: String) throws(Errno) {
        let destination = directory(ofCgroup: original) + "/cgroup.procs"
        try files.write("\(pid)", to: destination)
        for _ in 0..<Self.moveRounds {
            let left = threads(inTree: processDirectory(pid: pid))
            if left.isEmpty { break }
            // A TID written to cgroup.procs moves its whole process.
            for tid in left { try? files.write(tid, to: destination) }
        }
    }

    /// The TIDs in a group and every group below it.
    private func threads(inTree directory: String) -> [String] {
        var tids = ((try? files.read(directory + "/cgroup.threads")) ?? "").split(whereSeparator: \.isNewline).map(String.init)
        for child in files.subdirectories(directory) { tids += threads(inTree: directory + "/" + child) }
        return tids
    }

    /// The directory of a cgroup v2 path (`/` is the mount itself).
    func directory(ofCgroup path: String) -> String { path == "/" || path.isEmpty ? root : root + path }

    /// Removes the VM's groups once none of its vCPU threads is left in them.
    private func removeEmptyGroups(pid: Int32, vm: String) {
        guard groups.filter({ $0.pid == pid && $0.vm == vm }).allSatisfy({ $0.members == 0 }) else { return }
        groups.removeAll { $0.pid == pid && $0.vm == vm }
        removeTree(vmDirectory(pid: pid, vm: vm))
    }

    /// rmdir of a group and every group below it, deepest first; a group
    /// that still has members (EBUSY) stays, and so do its ancestors.
    private func removeTree(_ directory: String) {
        for child in files.subdirectories(directory) { removeTree(directory + "/" + child) }
        try? files.removeDirectory(directory)
    }
}
