/// The buffers of one available chain, already checked and translated: the
/// device-readable segments first, then the device-writable ones. Storage is
/// allocated once (`capacity` segments) and reused for every chain.
public struct DescriptorChain {
    public struct Segment {
        /// The buffer in this process (inside the guest memory mapping).
        public var bytes: UnsafeMutableRawBufferPointer
        public var writable: Bool
    }

    /// The most segments one chain may have (a device's bound; longer chains are broken rings).
    public let capacity: Int
    public private(set) var segments: [Segment]
    public private(set) var head: UInt16 = 0
    /// Bytes of all device-readable segments.
    public private(set) var readableLength = 0
    /// Bytes of all device-writable segments.
    public private(set) var writableLength = 0

    public init(capacity: Int) {
        precondition(capacity > 0, "a chain holds at least one segment")
        self.capacity = capacity
        segments = []
        segments.reserveCapacity(capacity)
    }

    mutating func reset(head: UInt16) {
        segments.removeAll(keepingCapacity: true)
        self.head = head
        readableLength = 0
        writableLength = 0
    }

    /// Appends a segment; false when the chain is full.
    mutating func append(_ bytes: UnsafeMutableRawBufferPointer, writable: Bool) -> Bool {
        guard segments.count < capacity else { return false }
        segments.append(Segment(bytes: bytes, writable: writable))
        // Each segment is at most 4 GiB and there are at most `capacity`: no overflow.
        if writable { writableLength += bytes.count } else { readableLength += bytes.count }
        return true
    }

    /// Copies the device-readable bytes, in order, into `buffer` (as many as
    /// fit); returns how many were copied. One copy: the guest can change its
    /// buffers at any time, and the device must parse what it has checked.
    public func copyReadable(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var copied = 0
        for segment in segments where !segment.writable {
            guard copied < buffer.count else { break }
            // An empty segment is a valid buffer of no bytes: the next one follows on.
            let count = min(segment.bytes.count, buffer.count - copied)
            UnsafeMutableRawBufferPointer(rebasing: buffer[copied..<(copied + count)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: segment.bytes[0..<count]))
            copied += count
        }
        return copied
    }

    /// Writes `bytes` across the device-writable segments in order (as many
    /// as fit); returns how many were written: the used element's `len`.
    public func writeWritable(_ bytes: UnsafeRawBufferPointer) -> Int {
        var written = 0
        for segment in segments where segment.writable {
            guard written < bytes.count else { break }
            let count = min(segment.bytes.count, bytes.count - written)
            UnsafeMutableRawBufferPointer(rebasing: segment.bytes[0..<count])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[written..<(written + count)]))
            written += count
        }
        return written
    }
}
