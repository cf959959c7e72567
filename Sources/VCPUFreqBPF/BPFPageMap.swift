import Glibc
import SystemPackage

/// One VM's shared page region as an mmapable BPF array map
/// (bpf/vcpufreq_slot.h): `pageCount` values of 4 KiB, contiguous when
/// mapped, which the VMM maps as guest memory and the host's BPF programs
/// read in place. Owns the map's descriptor (closed in deinit; the map lives
/// on while the VMM's mapping, the daemon's, or vm_pages holds it).
public final class BPFPageMap: @unchecked Sendable {
    /// The map's fd: what SHARED_OK sends and what mmap(2) maps.
    public let descriptor: FileDescriptor
    public let pageCount: Int
    public var byteCount: Int { pageCount * Self.pageSize }
    /// VCPUFREQ_PAGE_SIZE.
    public static let pageSize = 4096

    /// A map of `byteCount` bytes (rounded up to pages).
    /// - Throws: `BPFError.mapOperationFailed` with the kernel's errno.
    public init(byteCount: Int) throws {
        let pages = max(1, (byteCount + Self.pageSize - 1) / Self.pageSize)
        let (fd, code) = LibBPF.createPageMap(pages: pages)
        guard fd >= 0 else {
            throw BPFError.mapOperationFailed(
                map: "vcpufreq_page (\(pages) pages)", operation: "create", reason: LibBPF.reason(errno: code))
        }
        descriptor = FileDescriptor(rawValue: fd)
        pageCount = pages
    }

    deinit { close(descriptor.rawValue) }
}
