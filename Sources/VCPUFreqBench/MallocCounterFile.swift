import Atomics
import Foundation
import SystemPackage
import VCPUFreqLinux

/// The bench's side of the LD_PRELOAD allocation counter
/// (Sources/CVCPUFreqMallocCounter): creates the counter file the library
/// maps in the daemon, and reads the daemon's counts at any moment, without
/// the daemon's cooperation. The layout below must equal
/// `vcpufreq_malloc_counters` in include/vcpufreq_malloc_counter.h.
public final class MallocCounterFile: @unchecked Sendable {
    /// The variable the library reads the file's path from.
    public static let environmentVariable = "VCPUFREQ_MALLOC_COUNTERS"
    /// File name of the library next to the `vcpufreq` binary.
    public static let libraryFileName = "libVCPUFreqMallocCounter.so"
    static let magic: UInt64 = 0x434C_414D_4650_4356
    static let version: UInt64 = 2
    static let size = 65536
    /// Call stacks the library keeps while armed, and frames per stack.
    static let stackSlots = 256
    static let stackDepth = 24

    /// Byte offsets of the u64 fields.
    enum Offset {
        static let magic = 0x00
        static let version = 0x08
        static let pid = 0x10
        static let bytes = 0x18
        static let malloc = 0x20
        static let calloc = 0x28
        static let realloc = 0x30
        static let memalign = 0x38
        static let free = 0x40
        static let armed = 0x48
        static let recorded = 0x50
        static let stacks = 0x80
    }

    public let path: String
    private let mapping: MappedRegion

    /// Creates (or truncates) the file at `path` and initialises its header.
    public init(path: String) throws {
        self.path = path
        let fd = try FileDescriptor.open(
            FilePath(path), .readWrite, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite])
        defer { try? fd.close() }
        // A file of zeros, so every counter starts at 0.
        try fd.writeAll(Array(repeating: UInt8(0), count: Self.size))
        mapping = try MappedRegion(mapping: fd, byteCount: Self.size, writable: true)
        word(Offset.version).store(Self.version, ordering: .relaxed)
        // The magic last, with release: the library checks it (acquire) before counting.
        word(Offset.magic).store(Self.magic, ordering: .releasing)
    }

    private func word(_ offset: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: (mapping.baseAddress + offset).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    /// The counts so far.
    public func read() -> MallocCounts {
        MallocCounts(
            malloc: word(Offset.malloc).load(ordering: .relaxed), calloc: word(Offset.calloc).load(ordering: .relaxed),
            realloc: word(Offset.realloc).load(ordering: .relaxed), memalign: word(Offset.memalign).load(ordering: .relaxed),
            free: word(Offset.free).load(ordering: .relaxed), bytes: word(Offset.bytes).load(ordering: .relaxed))
    }

    /// The pid of the process counting into the file; nil until the library
    /// has started in one (it writes its pid when it maps the file).
    public var countingProcessID: Int32? {
        let pid = word(Offset.pid).load(ordering: .relaxed)
        return pid == 0 ? nil : Int32(truncatingIfNeeded: pid)
    }

    /// While armed, every allocation in the daemon records its call stack.
    public func setArmed(_ armed: Bool) {
        word(Offset.armed).store(armed ? 1 : 0, ordering: .relaxed)
    }

    /// Stacks recorded while armed so far (more than `stackSlots`: only the
    /// latest are kept).
    public var recordedStacks: UInt64 { word(Offset.recorded).load(ordering: .relaxed) }

    /// The stacks recorded as numbers `range` (from `recordedStacks` before
    /// and after a phase), as far as the ring still holds them: return
    /// addresses, innermost first.
    public func stacks(recorded range: Range<UInt64>) -> [[UInt64]] {
        let kept = range.clamped(to: max(range.upperBound, UInt64(Self.stackSlots)) - UInt64(Self.stackSlots)..<range.upperBound)
        return kept.map { number in
            let slot = Int(number % UInt64(Self.stackSlots))
            var frames: [UInt64] = []
            for depth in 0..<Self.stackDepth {
                let address = word(Offset.stacks + (slot * Self.stackDepth + depth) * 8).load(ordering: .relaxed)
                if address == 0 { break }
                frames.append(address)
            }
            return frames
        }
    }

    /// Where the library is expected: beside the running executable (SwiftPM
    /// puts the dynamic library product there).
    public static func libraryBesideExecutable() -> String? {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        let candidate = URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent(libraryFileName).path
        return FileManager.default.fileExists(atPath: candidate) ? candidate : nil
    }
}

/// Allocation calls counted in one process (cumulative, or a difference).
public struct MallocCounts: Codable, Equatable, Sendable {
    public var malloc: UInt64
    public var calloc: UInt64
    public var realloc: UInt64
    /// posix_memalign, aligned_alloc, memalign, valloc, pvalloc.
    public var memalign: UInt64
    public var free: UInt64
    /// Bytes requested by the allocating calls.
    public var bytes: UInt64

    public init(malloc: UInt64 = 0, calloc: UInt64 = 0, realloc: UInt64 = 0, memalign: UInt64 = 0, free: UInt64 = 0, bytes: UInt64 = 0) {
        self.malloc = malloc
        self.calloc = calloc
        self.realloc = realloc
        self.memalign = memalign
        self.free = free
        self.bytes = bytes
    }

    /// Calls that may allocate: everything but free.
    public var allocations: UInt64 { malloc &+ calloc &+ realloc &+ memalign }

    /// The counts between `earlier` and `self` (counters only grow; wrapping
    /// arithmetic keeps a wrapped 64-bit counter correct too).
    public func since(_ earlier: MallocCounts) -> MallocCounts {
        MallocCounts(
            malloc: malloc &- earlier.malloc, calloc: calloc &- earlier.calloc, realloc: realloc &- earlier.realloc,
            memalign: memalign &- earlier.memalign, free: free &- earlier.free, bytes: bytes &- earlier.bytes)
    }
}
