import Foundation
import SystemPackage

@testable import VCPUFreqLinux

/// An in-memory cgroup v2 hierarchy that enforces the kernel's rules the
/// cgroup actuator depends on (kernel/cgroup/cgroup.c, kernel/sched/core.c),
/// as Linux 7.3 showed them in the kernel matrix guest:
/// - writing a PID (or any TID of it) to `cgroup.procs` moves every thread
///   of that process, and only into a domain group (EOPNOTSUPP into a
///   threaded one);
/// - a TID written to `cgroup.threads` must stay in its threaded subtree
///   (the same threaded domain), else EOPNOTSUPP;
/// - a child of a threaded group is "domain invalid" until made threaded;
/// - `cpu.*` files exist only where the parent enabled `+cpu`, which needs
///   the controller enabled in the parent's parent (ENOENT otherwise);
/// - rmdir of a group with threads or children is EBUSY;
/// - a group's effective uclamp is its own capped by its parent's effective
///   one (the root: 1024 / 1024), and a task's is its own request clamped
///   into its group's range.
/// Paths are absolute under `mount`.
final class ModelCgroupFiles: CgroupFiles {
    enum GroupType: String { case domain, threaded, domainThreaded = "domain threaded", domainInvalid = "domain invalid" }

    final class Group {
        var type: GroupType
        var subtreeControl: Set<String> = []
        var uclampMin: UInt32 = 0
        var uclampMax: UInt32 = 1024
        init(type: GroupType) { self.type = type }
    }

    let mount: String
    private(set) var groups: [String: Group]
    /// Thread → its group (relative path, "/" = root).
    private(set) var threadGroup: [Int32: String] = [:]
    /// Process → its threads.
    private(set) var processes: [Int32: [Int32]] = [:]
    /// Every write, in order, for tests that care about the sequence.
    private(set) var writes: [(path: String, text: String)] = []

    init(mount: String = "/cg") {
        self.mount = mount
        let root = Group(type: .domain)
        root.uclampMin = 1024
        groups = ["/": root]
    }

    /// Adds a process whose threads all start in `group`.
    func addProcess(_ pid: Int32, threads: [Int32], in group: String = "/") {
        processes[pid] = [pid] + threads
        for tid in [pid] + threads { threadGroup[tid] = group }
    }

    func removeThread(_ tid: Int32) {
        threadGroup.removeValue(forKey: tid)
        for (pid, tids) in processes {
            let left = tids.filter { $0 != tid }
            processes[pid] = left.isEmpty ? nil : left
        }
    }

    // MARK: Model

    func relative(_ path: String) -> String? {
        guard path == mount || path.hasPrefix(mount + "/") else { return nil }
        let rest = String(path.dropFirst(mount.count))
        return rest.isEmpty ? "/" : rest
    }

    static func parent(of group: String) -> String? {
        guard group != "/" else { return nil }
        guard let slash = group.lastIndex(of: "/") else { return nil }
        let parent = String(group[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    func children(of group: String) -> [String] {
        groups.keys.filter { Self.parent(of: $0) == group }.sorted()
    }

    func threads(in group: String) -> [Int32] { threadGroup.filter { $0.value == group }.map(\.key).sorted() }

    /// The nearest ancestor-or-self that is not threaded: the threaded domain.
    func threadedDomain(of group: String) -> String {
        var current = group
        while let type = groups[current]?.type, type == .threaded, let parent = Self.parent(of: current) { current = parent }
        return current
    }

    /// The group's effective (min, max): its own values capped by its parent's effective ones.
    func effective(_ group: String) -> (min: UInt32, max: UInt32) {
        guard let node = groups[group] else { return (0, 1024) }
        guard let parent = Self.parent(of: group) else { return (node.uclampMin, node.uclampMax) }
        let up = effective(parent)
        let high = min(node.uclampMax, up.max)
        return (min(min(node.uclampMin, up.min), high), high)
    }

    /// A task's effective clamp (its own request 0 / 1024): clamp(request, group min, group max).
    func effectiveClamp(ofThread tid: Int32) -> (min: UInt32, max: UInt32)? {
        guard let group = threadGroup[tid] else { return nil }
        guard group != "/" else { return (0, 1024) }
        let range = effective(group)
        return (min(max(0, range.min), range.max), min(max(1024, range.min), range.max))
    }

    // MARK: CgroupFiles

    func unifiedPath(ofThread tid: Int32) -> String? { threadGroup[tid] }

    func subdirectories(_ path: String) -> [String] {
        guard let group = relative(path) else { return [] }
        return children(of: group).map { String($0.split(separator: "/").last ?? "") }
    }

    func makeDirectory(_ path: String) throws(Errno) {
        guard let group = relative(path), let parent = Self.parent(of: group) else { throw .invalidArgument }
        if groups[group] != nil { return }
        guard let parentGroup = groups[parent] else { throw .noSuchFileOrDirectory }
        groups[group] = Group(type: parentGroup.type == .threaded ? .domainInvalid : .domain)
    }

    func removeDirectory(_ path: String) throws(Errno) {
        guard let group = relative(path), groups[group] != nil else { throw .noSuchFileOrDirectory }
        guard threads(in: group).isEmpty, children(of: group).isEmpty else { throw .resourceBusy }
        groups.removeValue(forKey: group)
        if let parent = Self.parent(of: group), let node = groups[parent], node.type == .domainThreaded,
            !children(of: parent).contains(where: { groups[$0]?.type == .threaded })
        {
            node.type = .domain
        }
    }

    func read(_ path: String) throws(Errno) -> String {
        guard let (group, file) = split(path), let node = groups[group] else { throw .noSuchFileOrDirectory }
        switch file {
        case "cgroup.threads": return threads(in: group).map { "\($0)\n" }.joined()
        case "cgroup.procs":
            let pids = Set(threads(in: group).compactMap { tid in processes.first { $0.value.contains(tid) }?.key })
            return pids.sorted().map { "\($0)\n" }.joined()
        case "cgroup.type": return node.type.rawValue + "\n"
        case "cgroup.subtree_control": return node.subtreeControl.sorted().joined(separator: " ") + "\n"
        case "cpu.uclamp.min", "cpu.uclamp.max":
            try requireCPUFiles(group)
            let value = file == "cpu.uclamp.min" ? node.uclampMin : node.uclampMax
            return (value >= 1024 && file == "cpu.uclamp.max" ? "max" : Self.percent(value)) + "\n"
        default: throw .noSuchFileOrDirectory
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws(Errno) {
        let text = String(decoding: bytes, as: UTF8.self)
        writes.append((path, text))
        guard let (group, file) = split(path), let node = groups[group] else { throw .noSuchFileOrDirectory }
        switch file {
        case "cgroup.procs":
            guard let tid = Int32(text), let tids = processes.first(where: { $0.value.contains(tid) })?.value else {
                throw .noSuchProcess
            }
            guard node.type != .threaded, node.type != .domainInvalid else { throw .notSupported }
            for tid in tids { threadGroup[tid] = group }
        case "cgroup.threads":
            guard let tid = Int32(text), let from = threadGroup[tid] else { throw .noSuchProcess }
            guard node.type != .domainInvalid, threadedDomain(of: from) == threadedDomain(of: group) else {
                throw .notSupported
            }
            threadGroup[tid] = group
        case "cgroup.type":
            guard text == "threaded", group != "/", let parent = Self.parent(of: group), let parentNode = groups[parent] else {
                throw .invalidArgument
            }
            guard node.type == .domain || node.type == .domainInvalid || node.type == .threaded,
                children(of: group).allSatisfy({ groups[$0]?.type == .threaded || groups[$0]?.type == .domainInvalid })
            else { throw .notSupported }
            node.type = .threaded
            if parentNode.type == .domain { parentNode.type = .domainThreaded }
        case "cgroup.subtree_control":
            guard node.type != .domainInvalid else { throw .notSupported }
            for word in text.split(separator: " ") {
                let name = String(word.dropFirst())
                if word.hasPrefix("+") {
                    if let parent = Self.parent(of: group), groups[parent]?.subtreeControl.contains(name) != true {
                        throw .noSuchFileOrDirectory
                    }
                    node.subtreeControl.insert(name)
                } else {
                    node.subtreeControl.remove(name)
                }
            }
        case "cpu.uclamp.min", "cpu.uclamp.max":
            try requireCPUFiles(group)
            guard let value = Self.parseUclamp(text) else { throw .invalidArgument }
            if file == "cpu.uclamp.min" { node.uclampMin = value } else { node.uclampMax = value }
        default:
            throw .noSuchFileOrDirectory
        }
    }

    func openControl(_ path: String) throws(Errno) -> any CgroupControlFile {
        guard let (group, _) = split(path), groups[group] != nil else { throw .noSuchFileOrDirectory }
        try requireCPUFiles(group)
        return Control(files: self, path: path)
    }

    final class Control: CgroupControlFile {
        let files: ModelCgroupFiles
        let path: String
        init(files: ModelCgroupFiles, path: String) {
            self.files = files
            self.path = path
        }
        func write(_ bytes: UnsafeRawBufferPointer) throws(Errno) { try files.write(bytes, to: path) }
    }

    // MARK: Helpers

    private func split(_ path: String) -> (String, String)? {
        guard let slash = path.lastIndex(of: "/"), let group = relative(String(path[..<slash])) else { return nil }
        return (group, String(path[path.index(after: slash)...]))
    }

    /// cpu.* files: a non-root group whose parent enabled cpu.
    private func requireCPUFiles(_ group: String) throws(Errno) {
        guard let parent = Self.parent(of: group), groups[parent]?.subtreeControl.contains("cpu") == true else {
            throw .noSuchFileOrDirectory
        }
    }

    /// The kernel's parser: `max`, or a percentage with up to two decimals.
    static func parseUclamp(_ text: String) -> UInt32? {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if text == "max" { return 1024 }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = UInt32(parts[0]) else { return nil }
        var hundredths = whole * 100
        if parts.count == 2 {
            let fraction = String(parts[1].prefix(2)).padding(toLength: 2, withPad: "0", startingAt: 0)
            guard let value = UInt32(fraction) else { return nil }
            hundredths += value
        }
        guard hundredths <= 10_000 else { return nil }
        return (hundredths * 1024 + 5000) / 10_000
    }

    static func percent(_ value: UInt32) -> String {
        let hundredths = (value * 10_000 + 512) / 1024
        return "\(hundredths / 100)." + (hundredths % 100 < 10 ? "0" : "") + "\(hundredths % 100)"
    }
}
