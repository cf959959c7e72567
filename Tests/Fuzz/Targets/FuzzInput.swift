/// The fuzzer's bytes read as a stream of decisions (structure-aware
/// fuzzing): which VM, which operation, which offset, which value. Reading
/// past the end yields zeros, so every input is a complete program and the
/// fuzzer's mutations (flip, insert, cut) map to small changes of it.
public struct FuzzInput {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var position = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    public var isExhausted: Bool { position >= bytes.count }
    public var remaining: Int { max(0, bytes.count - position) }

    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// A little-endian integer of the type's width.
    public mutating func integer<T: FixedWidthInteger>(_: T.Type = T.self) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size { value |= T(truncatingIfNeeded: byte()) << (index * 8) }
        return value
    }

    public mutating func bool() -> Bool { byte() & 1 == 1 }

    /// 0..<count (0 when count is 0).
    public mutating func index(below count: Int) -> Int {
        guard count > 1 else { return 0 }
        return count <= 256 ? Int(byte()) % count : Int(integer(UInt32.self) % UInt32(truncatingIfNeeded: count))
    }

    public mutating func element<C: Collection>(of collection: C) -> C.Element {
        collection[collection.index(collection.startIndex, offsetBy: index(below: collection.count))]
    }

    /// Mostly one of `interesting` (boundaries the code compares against),
    /// nudged by -1, 0 or +1; sometimes any 64-bit value.
    public mutating func value(near interesting: [UInt64]) -> UInt64 {
        let selector = byte()
        guard selector >= 32, !interesting.isEmpty else { return integer(UInt64.self) }
        let base = interesting[Int(selector) % interesting.count]
        switch selector % 3 {
        case 0: return base &- 1
        case 1: return base
        default: return base &+ 1
        }
    }

    /// A length byte, then that many bytes (fewer at the end of the input).
    public mutating func chunk(maximum: Int = 255) -> UnsafeRawBufferPointer {
        take(min(Int(byte()), maximum))
    }

    /// The next `count` bytes (fewer at the end of the input).
    public mutating func take(_ count: Int) -> UnsafeRawBufferPointer {
        let length = min(max(count, 0), remaining)
        let start = min(position, bytes.count)
        defer { position += length }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)])
    }

    /// A string from a chunk of bytes (invalid UTF-8 becomes U+FFFD, so
    /// its UTF-8 can be longer than the chunk).
    public mutating func text(maximum: Int = 255) -> String {
        String(decoding: chunk(maximum: maximum), as: UTF8.self)
    }

    /// Everything not read yet.
    public mutating func rest() -> UnsafeRawBufferPointer {
        let start = min(position, bytes.count)
        position = bytes.count
        return UnsafeRawBufferPointer(rebasing: bytes[start...])
    }
}
