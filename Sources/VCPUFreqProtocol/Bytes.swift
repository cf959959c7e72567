/// Bounds-checked little-endian reads from a received packet. Every read
/// fails with `ProtocolViolation.malformed` instead of trapping, so a peer's
/// bytes can never crash the daemon.
public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var position: Int

    public init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    public var remaining: Int { bytes.count - position }

    @inline(__always)
    mutating func take<T: FixedWidthInteger>(_: T.Type, _ field: StaticString) throws(ProtocolViolation) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else {
            throw ProtocolViolation(.malformed, "message ends inside field \(field)")
        }
        let value = bytes.loadUnaligned(fromByteOffset: position, as: T.self)
        position += size
        return T(littleEndian: value)
    }

    public mutating func u16(_ field: StaticString) throws(ProtocolViolation) -> UInt16 { try take(UInt16.self, field) }
    public mutating func u32(_ field: StaticString) throws(ProtocolViolation) -> UInt32 { try take(UInt32.self, field) }
    public mutating func u64(_ field: StaticString) throws(ProtocolViolation) -> UInt64 { try take(UInt64.self, field) }

    /// u16 length + UTF-8 bytes, at most `maximum` bytes, valid UTF-8, no NUL.
    public mutating func string(_ field: StaticString, maximum: Int = Wire.maximumStringLength) throws(ProtocolViolation) -> String {
        let length = Int(try u16(field))
        guard length <= maximum else {
            throw ProtocolViolation(.malformed, "\(field) is \(length) bytes; at most \(maximum)")
        }
        guard remaining >= length else { throw ProtocolViolation(.malformed, "message ends inside \(field)") }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + length)])
        position += length
        guard !slice.contains(0), let text = String(validating: slice.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw ProtocolViolation(.malformed, "\(field) is not valid UTF-8 text")
        }
        return text
    }

    /// The rest of the message must be empty: trailing bytes are a framing error.
    public func expectEnd(after type: MessageType) throws(ProtocolViolation) {
        if remaining != 0 { throw ProtocolViolation(.malformed, "\(remaining) unexpected trailing bytes after the \(type) body") }
    }
}

/// Little-endian writes into a caller-owned buffer (reused across messages,
/// so encoding a reply on the hot path does not allocate).
public struct ByteWriter {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Empties the buffer, keeping its storage.
    public mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    @inline(__always)
    mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func u16(_ value: UInt16) { put(value) }
    public mutating func u32(_ value: UInt32) { put(value) }
    public mutating func u64(_ value: UInt64) { put(value) }

    /// Writes a u16-length-prefixed string, cut as `fitted` cuts it (our
    /// own messages only; peers' strings are checked on decode).
    public mutating func string(_ text: String) {
        let prefix = Self.fitted(text)
        u16(UInt16(prefix.utf8.count))
        bytes.append(contentsOf: prefix.utf8)
    }

    /// What `string` writes of `text`: all of it, or its longest prefix of
    /// whole characters within `Wire.maximumStringLength` bytes.
    public static func fitted(_ text: String) -> Substring {
        var prefix = Substring(text)
        while prefix.utf8.count > Wire.maximumStringLength { prefix = prefix.dropLast() }
        return prefix
    }

    public mutating func raw(_ data: some Sequence<UInt8>) { bytes.append(contentsOf: data) }

    /// Starts a message: writes a header whose length is patched by `finish()`.
    public mutating func begin(_ type: MessageType, id: UInt32, flags: MessageFlags = []) {
        reset()
        u16(type.rawValue)
        u16(flags.rawValue)
        u32(0)
        u32(id)
        u32(0)
    }

    /// Patches the header's length field once the body is written.
    public mutating func finish() {
        let length = UInt32(bytes.count).littleEndian
        withUnsafeBytes(of: length) { raw in
            for index in 0..<4 { bytes[4 + index] = raw[index] }
        }
    }
}
