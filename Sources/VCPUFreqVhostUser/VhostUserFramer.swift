/// Reassembles vhost-user messages from a nonblocking stream socket.
///
/// Each receive asks only for the bytes the current message still lacks
/// (the rest of the header, then exactly its payload), so a receive never
/// takes bytes of the next message, and the file descriptors the kernel
/// delivers with a receive belong to the message being read. A peer that
/// stops halfway costs one buffer, never a blocked loop. Storage is
/// allocated once.
public struct VhostUserFramer {
    /// The message being read: the header, then its payload.
    private var storage: [UInt8]
    private var filled = 0
    private var header: VhostUserHeader?

    public init() {
        storage = Array(repeating: 0, count: VhostUserLimits.headerSize + VhostUserLimits.maximumPayload)
    }

    /// Bytes the next receive may take (never 0 while a message is incomplete).
    public var wanted: Int {
        if let header { return VhostUserLimits.headerSize + Int(header.size) - filled }
        return VhostUserLimits.headerSize - filled
    }

    /// Gives `body` the buffer the next receive fills (`wanted` bytes) and
    /// takes the count it reports (0 when the receive got nothing; the
    /// caller keeps its error).
    public mutating func receive(_ body: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        let want = wanted
        let start = filled
        let count = storage.withUnsafeMutableBytes { raw in
            body(UnsafeMutableRawBufferPointer(rebasing: raw[start..<(start + want)]))
        }
        precondition(count >= 0 && count <= want, "a receive reported more bytes than it was given")
        filled += count
        return count
    }

    /// True once the header and its whole payload are in: `withMessage` may
    /// then be called. Fails when the header is malformed (close the connection).
    public mutating func isComplete() throws(VhostUserError) -> Bool {
        if header == nil {
            guard filled == VhostUserLimits.headerSize else { return false }
            let decoded = storage.withUnsafeBytes { raw in
                Result { () throws(VhostUserError) in
                    try VhostUserHeader.decode(UnsafeRawBufferPointer(rebasing: raw[0..<VhostUserLimits.headerSize]))
                }
            }
            header = try decoded.get()
        }
        guard let header else { return false }
        return filled == VhostUserLimits.headerSize + Int(header.size)
    }

    /// Nothing of a next message has arrived yet.
    public var isIdle: Bool { filled == 0 }

    /// The complete message's header and payload (valid inside `body`), then
    /// the framer starts on the next message.
    public mutating func withMessage<R>(_ body: (VhostUserHeader, UnsafeRawBufferPointer) -> R) -> R {
        guard let header, filled == VhostUserLimits.headerSize + Int(header.size) else {
            preconditionFailure("withMessage before the message is complete")
        }
        defer {
            self.header = nil
            filled = 0
        }
        return storage.withUnsafeBytes { raw in
            body(header, UnsafeRawBufferPointer(rebasing: raw[VhostUserLimits.headerSize..<filled]))
        }
    }
}
