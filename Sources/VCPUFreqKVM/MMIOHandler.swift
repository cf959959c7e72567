/// What a VMM does with the guest accesses KVM hands to userspace: loads and
/// stores to guest-physical addresses no memslot backs (or stores to a
/// read-only memslot), and port I/O. Called on the vCPU's own thread, so
/// several vCPUs call one handler concurrently; keep it cheap and
/// allocation-free, since every call is already a ~30 µs round trip.
///
/// Writes to the page that ends a script run (`GuestLayout.doneAddress`)
/// never reach the handler.
public protocol MMIOHandler: AnyObject, Sendable {
    /// A guest load of `width` bytes (1, 2, 4 or 8) at `gpa`; the low `width`
    /// bytes of the result are what the guest reads.
    func read(vcpu: Int, gpa: UInt64, width: Int) -> UInt64
    /// A guest store of `width` bytes at `gpa`; `value` holds them zero-extended.
    func write(vcpu: Int, gpa: UInt64, width: Int, value: UInt64)
    /// A guest `in` of `width` bytes (1, 2 or 4) from `port`.
    func portRead(vcpu: Int, port: UInt16, width: Int) -> UInt64
    /// A guest `out` of `width` bytes to `port`.
    func portWrite(vcpu: Int, port: UInt16, width: Int, value: UInt64)
}

extension MMIOHandler {
    /// Ports are unused by default: reads see 0, writes are dropped.
    public func portRead(vcpu: Int, port: UInt16, width: Int) -> UInt64 { 0 }
    public func portWrite(vcpu: Int, port: UInt16, width: Int, value: UInt64) {}
}

/// The default handler: every read returns 0, every write is dropped (what
/// unbacked guest-physical space looks like on real hardware, roughly).
public final class NullMMIOHandler: MMIOHandler {
    public init() {}
    public func read(vcpu: Int, gpa: UInt64, width: Int) -> UInt64 { 0 }
    public func write(vcpu: Int, gpa: UInt64, width: Int, value: UInt64) {}
}
