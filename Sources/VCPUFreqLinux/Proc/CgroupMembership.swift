/// One line of /proc/<tid>/cgroup: `hierarchy-ID:controller-list:path`.
public struct CgroupMembership: Equatable, Sendable {
    /// 0 for the cgroup v2 unified hierarchy.
    public var hierarchyID: Int
    /// v1 controllers bound to the hierarchy (`cpu`, `cpuacct`); empty for v2.
    public var controllers: [String]
    /// Path relative to the hierarchy's mount point, starting with `/`.
    public var path: String

    public init(hierarchyID: Int, controllers: [String], path: String) {
        self.hierarchyID = hierarchyID
        self.controllers = controllers
        self.path = path
    }

    /// Parses the file; malformed lines are skipped (the kernel writes this
    /// file, but a fake root in tests may not).
    public static func parse(_ text: String) -> [CgroupMembership] {
        text.split(separator: "\n").compactMap { line in
            // The path may itself contain ':' — split at the first two only.
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, let id = Int(parts[0]) else { return nil }
            let controllers = parts[1].split(separator: ",").map(String.init)
            return CgroupMembership(hierarchyID: id, controllers: controllers, path: String(parts[2]))
        }
    }
}

extension Array where Element == CgroupMembership {
    /// The cgroup v2 path (`0::/path`).
    public var unifiedPath: String? {
        first { $0.hierarchyID == 0 && $0.controllers.isEmpty }?.path
    }

    /// The path in the v1 hierarchy holding `controller` (e.g. `cpu`).
    public func v1Path(controller: String) -> String? {
        first { $0.hierarchyID != 0 && $0.controllers.contains(controller) }?.path
    }
}
