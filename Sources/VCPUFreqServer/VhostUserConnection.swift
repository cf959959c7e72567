import SystemPackage
import VCPUFreqLinux
import VCPUFreqVhostUser

/// The I/O half of one vhost-user front-end connection, for any device:
/// the stream socket and its framing, the descriptors each message brings,
/// the mapped memory table, the kick and call eventfds and one
/// `SplitVirtqueue` per serving ring. The protocol decisions are
/// `VhostUserBackend`'s; what the buffers mean is the device's. Nothing
/// here knows SCMI.
final class VhostUserConnection {
    let socket: StreamConnection
    let peer: PeerCredentials
    private(set) var backend: VhostUserBackend
    private var framer = VhostUserFramer()
    /// Descriptors received with the message being read (at most 8).
    private var pending: [OwnedDescriptor] = []
    private var mappings: [MappedRegion] = []
    private(set) var memory: GuestMemoryTable?
    /// Some region's file may shrink under the mapping (not F_SEAL_SHRINK).
    private(set) var unsealedMemory = false
    private var queues: [SplitVirtqueue?]
    private(set) var kicks: [OwnedDescriptor?]
    private var calls: [EventFD?]
    /// Per queue: buffers used and not yet signalled.
    private var unsignalled: [Int]
    private var chain: DescriptorChain
    private let requestBuffer: UnsafeMutableRawBufferPointer
    private let responseBuffer: UnsafeMutableRawBufferPointer
    private var reply: [UInt8] = []
    private(set) var messages: UInt64 = 0

    /// Largest request a device reads and response it writes, per chain.
    static let bufferBytes = 512

    /// What `receive` ended with.
    enum Ending: Equatable {
        case open
        /// Close the connection: the reason, for the log and STATUS (nil: the peer left).
        case closed(String?)
    }

    init(socket: StreamConnection, peer: PeerCredentials, device: VhostUserBackend.Device, maximumChainLength: Int) {
        self.socket = socket
        self.peer = peer
        backend = VhostUserBackend(device: device)
        queues = Array(repeating: nil, count: device.queueCount)
        kicks = Array(repeating: nil, count: device.queueCount)
        calls = Array(repeating: nil, count: device.queueCount)
        unsignalled = Array(repeating: 0, count: device.queueCount)
        chain = DescriptorChain(capacity: maximumChainLength)
        requestBuffer = .allocate(byteCount: Self.bufferBytes, alignment: 8)
        responseBuffer = .allocate(byteCount: Self.bufferBytes, alignment: 8)
        reply.reserveCapacity(32)
    }

    deinit {
        requestBuffer.deallocate()
        responseBuffer.deallocate()
    }

    /// Queue `index` is started, enabled and built: its buffers may be served.
    func isServing(_ index: Int) -> Bool { queues.indices.contains(index) && queues[index] != nil }

    /// Reads and handles up to `limit` messages. `kickChanged(queue, old,
    /// new)` runs before an old kick descriptor is closed and after a new
    /// one is owned, so the caller keeps its epoll set right.
    func receive(limit: Int, kickChanged: (Int, FileDescriptor?, FileDescriptor?) -> Void) -> Ending {
        for _ in 0..<limit {
            var outcome: Result<ReceivedMessage, Errno> = .success(.wouldBlock)
            _ = framer.receive { buffer in
                outcome = Result { () throws(Errno) in
                    try socket.receive(into: buffer, maximumDescriptors: VhostUserLimits.maximumRegions)
                }
                if case .success(.message(let count, _)) = outcome { return count }
                return 0
            }
            switch outcome {
            case .failure(let error): return .closed("receive failed: \(error)")
            case .success(.wouldBlock): return .open
            case .success(.endOfStream): return .closed(framer.isIdle ? nil : "the front-end closed the socket inside a message")
            case .success(.descriptorsTruncated), .success(.dataTruncated):
                return .closed("more than \(VhostUserLimits.maximumRegions) file descriptors with one message")
            case .success(.message(_, let descriptors)):
                guard pending.count + descriptors.count <= VhostUserLimits.maximumRegions else {
                    return .closed("more than \(VhostUserLimits.maximumRegions) file descriptors with one message")
                }
                pending.append(contentsOf: descriptors)
            }
            do throws(VhostUserError) {
                guard try framer.isComplete() else { continue }
            } catch {
                return .closed(error.description)
            }
            let handled = framer.withMessage { header, payload in
                Result { () throws(VhostUserError) in
                    (header, try VhostUserRequest.decode(header: header, payload: payload))
                }
            }
            messages &+= 1
            let descriptors = pending
            pending = []
            do throws(VhostUserError) {
                let (header, request) = try handled.get()
                try handle(request, header: header, descriptors: descriptors, kickChanged: kickChanged)
            } catch {
                return .closed(error.description)
            }
            // Descriptors nobody took are closed here (`descriptors` goes away).
        }
        return .open
    }

    private func handle(
        _ request: VhostUserRequest, header: VhostUserHeader, descriptors: [OwnedDescriptor],
        kickChanged: (Int, FileDescriptor?, FileDescriptor?) -> Void
    ) throws(VhostUserError) {
        let table = memory
        let outcome = try backend.handle(request, header: header, descriptorCount: descriptors.count) { address, count in
            table?.guestAddress(ofUserAddress: address, count: count)
        }
        if let answer = outcome.reply {
            answer.encode(into: &reply)
            try sendReply(header.request)
        }
        switch outcome.effect {
        case .none, .error:
            break  // SET_VRING_ERR's descriptor is closed: errors are logged by the daemon instead
        case .replaceMemory(let regions):
            try replaceMemory(regions, descriptors: descriptors)
        case .kick(let queue, let has):
            let old = kicks[queue]
            kicks[queue] = has ? descriptors[0] : nil
            kickChanged(queue, old?.rawDescriptor, kicks[queue]?.rawDescriptor)
        case .call(let queue, let has):
            calls[queue] = has ? EventFD(adopting: descriptors[0].release()) : nil
        case .stop(let queue):
            if let old = kicks[queue] { kickChanged(queue, old.rawDescriptor, nil) }
            kicks[queue] = nil
        case .enable:
            break
        case .reset:
            for queue in kicks.indices {
                if let old = kicks[queue] { kickChanged(queue, old.rawDescriptor, nil) }
                kicks[queue] = nil
                calls[queue] = nil
            }
            for index in queues.indices { queues[index] = nil }
            memory = nil
            mappings = []
        }
        try refreshQueues()
    }

    /// A GET_* reply: small, and the front-end is waiting for it with an
    /// empty receive buffer, so a socket that cannot take it at once means
    /// a peer that stopped reading.
    private func sendReply(_ request: VhostUserRequestCode) throws(VhostUserError) {
        let sent = reply.withUnsafeBytes { bytes in Result { () throws(Errno) in try socket.send(bytes) } }
        guard case .success(let count) = sent, count == reply.count else { throw .replyNotSent(request) }
    }

    /// Maps each region's descriptor (checked: a regular file long enough for
    /// `mmap_offset + size`, so no access can fault past its end) and builds
    /// the new table; the rings are rebuilt on it.
    private func replaceMemory(_ regions: [VhostUserMemoryRegion], descriptors: [OwnedDescriptor]) throws(VhostUserError) {
        var mapped: [MappedRegion] = []
        var table: [GuestMemoryRegion] = []
        var unsealed = false
        for (index, region) in regions.enumerated() {
            let descriptor = descriptors[index].rawDescriptor
            let info: FileInfo
            do { info = try FileInfo.of(descriptor) } catch {
                throw .badMemoryTable("region \(index): cannot stat its file: \(error)")
            }
            let (end, overflow) = region.mmapOffset.addingReportingOverflow(region.size)
            guard !overflow, end <= UInt64(Int.max), region.size > 0 else {
                throw .badMemoryTable("region \(index): offset \(region.mmapOffset) + size \(region.size) overflows")
            }
            guard info.isRegular, info.size >= 0, UInt64(info.size) >= end else {
                throw .badMemoryTable("region \(index) needs \(end) bytes of a file that has \(info.size)")
            }
            if !info.cannotShrink { unsealed = true }
            let mapping: MappedRegion
            do { mapping = try MappedRegion(mapping: descriptor, byteCount: Int(end)) } catch {
                throw .badMemoryTable("region \(index): mmap failed: \(error)")
            }
            mapped.append(mapping)
            table.append(GuestMemoryRegion(
                guestAddress: region.guestAddress, size: region.size, userAddress: region.userAddress,
                base: mapping.baseAddress + Int(region.mmapOffset)))
        }
        let newTable = try GuestMemoryTable(regions: table)
        for index in queues.indices where queues[index] != nil {
            backend.recordProgress(queue: index, nextAvailable: queues[index]!.nextAvailable)
            queues[index] = nil
        }
        memory = newTable
        mappings = mapped  // the old mappings go only after no queue points into them
        unsealedMemory = unsealed
    }

    /// Builds the queue of every ring that became serving, drops the others.
    private func refreshQueues() throws(VhostUserError) {
        for index in queues.indices {
            let ring = backend.rings[index]
            guard ring.isServing, let layout = ring.layout, let memory else {
                if let queue = queues[index] { backend.recordProgress(queue: index, nextAvailable: queue.nextAvailable) }
                queues[index] = nil
                continue
            }
            guard queues[index] == nil else { continue }
            do throws(VirtqueueError) {
                queues[index] = try SplitVirtqueue(
                    layout: layout, memory: memory, nextAvailable: ring.base,
                    indirectDescriptors: backend.indirectDescriptorsNegotiated)
            } catch {
                throw .badRingAddress(index: UInt32(index), error.description)
            }
        }
    }

    /// Serves up to `limit` chains of queue `index` with `handler` (request
    /// bytes and length → response length). The guest is not told yet:
    /// `interrupt(queue:)` does that, once the caller has acted on the
    /// requests (so a used buffer means "done"). A broken ring throws.
    func serve(
        queue index: Int, limit: Int,
        _ handler: (_ request: UnsafeRawBufferPointer, _ readableLength: Int, _ response: UnsafeMutableRawBufferPointer) -> Int
    ) throws(VirtqueueError) -> SplitVirtqueue.ServeOutcome {
        guard queues.indices.contains(index), var queue = queues[index], let memory else { return .drained(served: 0) }
        queues[index] = nil  // no copy-on-write of the queue while it is served
        defer {
            backend.recordProgress(queue: index, nextAvailable: queue.nextAvailable)
            queues[index] = queue
        }
        let outcome = try queue.serve(
            memory: memory, chain: &chain, request: requestBuffer, response: responseBuffer, limit: limit, handler)
        switch outcome {
        case .drained(let count), .more(let count): unsignalled[index] += count
        }
        return outcome
    }

    /// Signals queue `index`'s call eventfd once if buffers were used since
    /// the last signal and the driver wants interrupts (one eventfd write
    /// per batch, not per buffer).
    func interrupt(queue index: Int) {
        guard unsignalled.indices.contains(index), unsignalled[index] > 0, let queue = queues[index] else { return }
        unsignalled[index] = 0
        if queue.wantsInterrupt(), let call = calls[index] { _ = try? call.signal() }
    }
}
