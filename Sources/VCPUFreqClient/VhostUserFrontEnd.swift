import Glibc
import SystemPackage
import VCPUFreqLinux
import VCPUFreqVhostUser

/// Why the front-end could not go on (its description is the message).
public struct VhostUserFrontEndError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A vhost-user front-end that plays an unmodified VMM's virtio device
/// (QEMU's `vhost-user-scmi`) against `vcpufreq serve --vhost-user-scmi`:
/// guest RAM on a sealed memfd, QEMU's start-up message sequence, and the
/// guest driver's side of the rings (`VirtqueueDriver`). For the tests and
/// the benchmark; a real VMM has its own.
///
/// Guest memory layout (guest-physical, from `guestBase`): queue q's
/// descriptor table, avail and used rings at `q * 0x8000` (+0, +0x2000,
/// +0x4000); request/response buffers from 0x10000, one pair per slot.
/// `post` uses descriptors 2·slot and 2·slot+1 and a fixed buffer pair per
/// slot, so a caller can keep `queueSize / 2` commands in flight; nothing
/// on that path allocates.
public final class VhostUserFrontEnd {
    public let socket: StreamConnection
    public let memory: MemoryFile
    private let mapping: MappedRegion
    public let guest: GuestMemoryTable
    public let queueSize: UInt16
    /// The rings as the guest's driver sees them: cmdq (0) and eventq (1).
    public private(set) var queues: [VirtqueueDriver] = []
    public private(set) var kicks: [EventFD] = []
    public private(set) var calls: [EventFD] = []
    /// What the back-end offered and what was acked.
    public private(set) var offeredFeatures: UInt64 = 0
    public private(set) var offeredProtocolFeatures: UInt64 = 0
    public private(set) var queueCount: UInt64 = 0
    private var message: [UInt8] = []

    public static let guestBase: UInt64 = 0x4000_0000
    /// The front-end's own "user address" of guest RAM, as QEMU has its
    /// mapping somewhere: deliberately not the guest address, so a back-end
    /// that confuses the two fails.
    public static let userBase: UInt64 = 0x7F00_0000_0000
    public static let bufferBase: UInt64 = 0x10000
    /// Bytes of one slot's request and response buffers.
    public static let bufferBytes = 256

    /// Requests the device must have answered within.
    public var timeoutNanoseconds: UInt64 = 5_000_000_000

    /// Connects to `path` and, with `start`, runs QEMU's sequence (features,
    /// protocol features, queue count, owner, memory table, then each ring:
    /// NUM, BASE, ADDR, KICK, CALL, ENABLE). Replies time out after 5 s.
    public init(path: String, memoryBytes: Int = 1 << 20, queueSize: UInt16 = 256, queueCount: Int = 2, start: Bool = true) throws {
        precondition(queueSize <= 1024 && queueCount <= 4, "the layout holds 4 queues of up to 1024")
        precondition(Int(Self.bufferBase) + Int(queueSize / 2) * 2 * Self.bufferBytes <= memoryBytes, "buffers must fit guest memory")
        self.queueSize = queueSize
        memory = try MemoryFile(name: "vcpufreq-frontend-ram", byteCount: memoryBytes, allowSealing: true)
        try memory.sealSize()
        mapping = try memory.map()
        guest = try GuestMemoryTable(regions: [
            GuestMemoryRegion(guestAddress: Self.guestBase, size: UInt64(memoryBytes), userAddress: Self.userBase, base: mapping.baseAddress)
        ])
        socket = try StreamConnection.connect(to: path)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            guard setsockopt(socket.descriptor.rawValue, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
                throw Errno(rawValue: errno)
            }
        }
        for queue in 0..<queueCount {
            queues.append(try VirtqueueDriver(layout: Self.layout(queue: queue, size: queueSize), memory: guest))
            kicks.append(try EventFD())
            calls.append(try EventFD())
        }
        if start { try self.start() }
    }

    public static func layout(queue: Int, size: UInt16) -> VirtqueueLayout {
        let base = guestBase + UInt64(queue) * 0x8000
        return VirtqueueLayout(size: size, descriptorTable: base, availableRing: base + 0x2000, usedRing: base + 0x4000)
    }

    /// The user address QEMU would put in SET_VRING_ADDR for guest address `address`.
    public static func userAddress(ofGuest address: UInt64) -> UInt64 { address - guestBase + userBase }

    /// The whole start-up sequence of QEMU's vhost-user device.
    public func start() throws {
        offeredFeatures = try query(.getFeatures)
        let protocolFeatures = offeredFeatures & VirtioFeatures.protocolFeatures.rawValue != 0
        if protocolFeatures {
            offeredProtocolFeatures = try query(.getProtocolFeatures)
            try send(.setProtocolFeatures(offeredProtocolFeatures & VhostUserProtocolFeatures.multipleQueues.rawValue))
            if offeredProtocolFeatures & VhostUserProtocolFeatures.multipleQueues.rawValue != 0 { queueCount = try query(.getQueueNum) }
        }
        try send(.setOwner)
        // VERSION_1, VIRTIO_SCMI_F_P2A_CHANNELS and protocol features: what QEMU's vhost-user-scmi acks.
        let wanted = VirtioFeatures.version1.rawValue | 1 | VirtioFeatures.protocolFeatures.rawValue
        try send(.setFeatures(offeredFeatures & wanted))
        try send(.setMemoryTable([VhostUserMemoryRegion(
            guestAddress: Self.guestBase, size: UInt64(memory.byteCount), userAddress: Self.userBase, mmapOffset: 0)]),
            descriptors: [memory.descriptor])
        for queue in queues.indices {
            let index = UInt32(queue), layout = queues[queue].layout
            try send(.setVringNum(index: index, size: UInt32(queueSize)))
            try send(.setVringBase(index: index, base: 0))
            try send(.setVringAddress(VringAddresses(
                index: index, descriptorTable: Self.userAddress(ofGuest: layout.descriptorTable),
                usedRing: Self.userAddress(ofGuest: layout.usedRing), availableRing: Self.userAddress(ofGuest: layout.availableRing))))
            try send(.setVringKick(index: index, hasDescriptor: true), descriptors: [kicks[queue].descriptor])
            try send(.setVringCall(index: index, hasDescriptor: true), descriptors: [calls[queue].descriptor])
            if protocolFeatures { try send(.setVringEnable(index: index, enabled: true)) }
        }
    }

    // MARK: Messages

    /// Sends one message (and its descriptors).
    public func send(_ request: VhostUserRequest, descriptors: [FileDescriptor] = [], flags: UInt32 = 0) throws {
        request.encode(flags: flags, into: &message)
        try sendRaw(message, descriptors: descriptors)
    }

    /// Sends bytes as they are: a test's malformed message.
    public func sendRaw(_ bytes: [UInt8], descriptors: [FileDescriptor] = []) throws {
        let sent = try socket.send(bytes, descriptors: descriptors)
        guard sent == bytes.count else { throw VhostUserFrontEndError("the back-end took \(sent) of \(bytes.count) bytes") }
    }

    /// Sends a GET_* and returns the u64 of its reply.
    public func query(_ request: VhostUserRequest) throws -> UInt64 {
        try send(request)
        let reply = try receiveReply()
        guard reply.request == request.code, reply.payload.count == 8 else {
            throw VhostUserFrontEndError("reply to \(request.code): \(reply.request) with \(reply.payload.count) bytes")
        }
        return reply.payload.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    /// GET_VRING_BASE: stops the ring; returns where the back-end stopped.
    public func stopQueue(_ index: Int) throws -> UInt32 {
        try send(.getVringBase(index: UInt32(index)))
        let reply = try receiveReply()
        guard reply.request == .getVringBase, reply.payload.count == 8 else {
            throw VhostUserFrontEndError("reply to GET_VRING_BASE: \(reply.request) with \(reply.payload.count) bytes")
        }
        return reply.payload.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) }
    }

    /// One reply: header fields and payload. End of stream or a timeout throws.
    public func receiveReply() throws -> (request: VhostUserRequestCode, flags: UInt32, payload: [UInt8]) {
        let header = try receiveExactly(VhostUserLimits.headerSize)
        func word(_ offset: Int) -> UInt32 { header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) } }
        let size = Int(word(8))
        guard size <= VhostUserLimits.maximumPayload else { throw VhostUserFrontEndError("reply payload of \(size) bytes") }
        return (VhostUserRequestCode(rawValue: word(0)), word(4), try receiveExactly(size))
    }

    /// Whether the back-end closed the connection (waits up to `timeoutMilliseconds`).
    public func isClosedByPeer(timeoutMilliseconds: Int32 = 5000) -> Bool {
        var entry = pollfd(fd: socket.descriptor.rawValue, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, timeoutMilliseconds) == 1 else { return false }
        var byte: UInt8 = 0
        return recv(socket.descriptor.rawValue, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) == 0
    }

    private func receiveExactly(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let received = try bytes.withUnsafeMutableBytes { raw in
                try socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: raw[filled...]))
            }
            switch received {
            case .message(let n, _): filled += n
            case .endOfStream: throw VhostUserFrontEndError("the back-end closed the connection")
            case .wouldBlock: throw VhostUserFrontEndError("no reply from the back-end within the timeout")
            case .dataTruncated, .descriptorsTruncated: throw VhostUserFrontEndError("unexpected descriptors with a reply")
            }
        }
        return bytes
    }

    // MARK: The guest's commands

    /// Guest addresses of slot `slot`'s request and response buffers.
    public static func buffers(slot: Int) -> (request: UInt64, response: UInt64) {
        let base = guestBase + bufferBase + UInt64(slot) * 2 * UInt64(bufferBytes)
        return (base, base + UInt64(bufferBytes))
    }

    /// Copies `request` into slot `slot`'s buffer and adds it to the command
    /// queue as a two-descriptor chain (head 2·slot) with `responseRoom`
    /// writable bytes; published, not kicked.
    public func post(slot: Int, request: UnsafeRawBufferPointer, responseRoom: Int = bufferBytes, queue: Int = 0) {
        precondition(request.count <= Self.bufferBytes && responseRoom <= Self.bufferBytes && slot < Int(queueSize / 2))
        let (requestAddress, responseAddress) = Self.buffers(slot: slot)
        guest.bytes(atGuestAddress: requestAddress, count: request.count)!.copyMemory(from: request)
        let head = UInt16(2 * slot)
        queues[queue].setRequestChain(
            first: head, request: requestAddress, requestLength: UInt32(request.count), response: responseAddress,
            responseLength: UInt32(responseRoom))
        queues[queue].publish(head)
    }

    /// What the guest's virtio driver does after adding buffers: +1 on the kick eventfd.
    public func kick(queue: Int = 0) throws {
        try kicks[queue].signal()
    }

    /// Waits (spinning with sched_yield) until the device returns a used
    /// element on `queue`; returns its slot and length.
    public func waitUsed(queue: Int = 0) throws -> (slot: Int, length: Int) {
        let start = MonotonicClock.nowNanoseconds()
        while true {
            if let used = queues[queue].popUsed() { return (Int(used.id / 2), Int(used.length)) }
            if MonotonicClock.nowNanoseconds() &- start > timeoutNanoseconds {
                throw VhostUserFrontEndError("no used buffer on queue \(queue) within \(timeoutNanoseconds / 1_000_000) ms")
            }
            sched_yield()
        }
    }

    /// Waits (spinning with sched_yield) until the device signals `queue`'s
    /// call eventfd, as the guest waits for its interrupt; returns the count
    /// (signals coalesce). The daemon signals after acting on the batch.
    @discardableResult
    public func waitInterrupt(queue: Int = 0) throws -> UInt64 {
        let start = MonotonicClock.nowNanoseconds()
        while true {
            if let count = try calls[queue].drain() { return count }
            if MonotonicClock.nowNanoseconds() &- start > timeoutNanoseconds {
                throw VhostUserFrontEndError("no interrupt on queue \(queue) within \(timeoutNanoseconds / 1_000_000) ms")
            }
            sched_yield()
        }
    }

    /// The next used element of `queue` (slot and length), nil when none is new.
    public func popUsed(queue: Int = 0) -> (slot: Int, length: Int)? {
        queues[queue].popUsed().map { (Int($0.id / 2), Int($0.length)) }
    }

    /// The response bytes the device wrote into slot `slot`.
    public func response(slot: Int, length: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(guest.bytes(atGuestAddress: Self.buffers(slot: slot).response, count: length)!)
    }

    /// One command, start to end: post in slot 0, kick, wait, copy the response.
    public func call(_ request: [UInt8], responseRoom: Int = bufferBytes) throws -> [UInt8] {
        request.withUnsafeBytes { post(slot: 0, request: $0, responseRoom: responseRoom) }
        try kick()
        let used = try waitUsed()
        return Array(response(slot: used.slot, length: used.length))
    }

    /// Interrupts the device signalled on `queue` since the last look (the call eventfd's count).
    public func interrupts(queue: Int = 0) throws -> UInt64 { try calls[queue].drain() ?? 0 }

    /// Direct access to the rings, for a test that breaks them.
    public func withQueue<R>(_ index: Int, _ body: (inout VirtqueueDriver) -> R) -> R { body(&queues[index]) }
}
