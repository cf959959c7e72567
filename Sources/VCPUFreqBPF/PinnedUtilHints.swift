import Glibc

/// The util-hint map as another process sees it through its pin in bpffs:
/// what a sched_ext scheduler reads, and what scripts/test-kernels' guest
/// driver checks the daemon wrote. Read only.
public final class PinnedUtilHints {
    public let path: String
    let map: BPFMap

    /// Opens the map pinned at `path` (bpf_obj_get); fails when nothing is
    /// pinned there or the map there is not a util-hint map.
    public init(path: String) throws {
        self.path = path
        map = try BPFMap.openPinned(path: path)
        guard map.keySize == 4, map.valueSize == LibBPF.utilHintSize else {
            throw BPFError.mapOperationFailed(
                map: path, operation: "open pinned",
                reason: "key/value sizes \(map.keySize)/\(map.valueSize), not 4/\(LibBPF.utilHintSize): not a util-hint map")
        }
    }

    /// The hint of thread `tid`; nil when the map has none.
    public func hint(tid: Int32) throws -> UtilHint? {
        guard tid > 0 else { return nil }
        guard let result = LibBPF.readHint(fd: map.fd, tid: UInt32(tid)) else {
            throw BPFError.mapOperationFailed(map: path, operation: "lookup \(tid)", reason: LibBPF.reason(errno: errno))
        }
        return result
    }
}
