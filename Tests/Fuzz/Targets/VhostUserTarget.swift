// The vhost-user back-end (VhostUserFramer, VhostUserRequest.decode,
// VhostUserBackend) on what a front-end writes to its socket: a byte
// stream of well-formed, corrupted and raw messages, cut into receives of
// any size (as the framer asks for them), with file descriptors attached to
// any receive or none; the memory table checked as the daemon's connection
// checks it (GuestMemoryTable over fake mappings: nothing is mapped), on
// the SCMI device the daemon serves and on variants of it (queue count and
// size, REPLY_ACK offered).
//
// Asserted for every message, against a model of the back-end written from
// vhost-user.rst and docs/scmi.md "The virtio device" (not from the code):
// - it is either handled or refused with a reason (framing, layout,
//   descriptors, queue index, size or base, features never offered, ring
//   address outside the table, no table yet, ENABLE without protocol
//   features, a bad memory table, a request this back-end does not serve),
//   exactly as the model says; a refusal leaves the back-end's state as it
//   was and ends the connection (nothing after it is read);
// - a handled message gets the reply the spec gives, and only then: GET_*
//   a u64 (or vring state) reply of the same request code with the reply
//   flag and an 8-byte payload; with REPLY_ACK negotiated and need_reply
//   set, any other message an ack (u64 0); no reply is larger than the
//   header plus the largest payload;
// - a message that decodes re-encodes to its own bytes, except the fields
//   the spec says are ignored (SET_MEM_TABLE's padding and slots past its
//   count, GET_VRING_BASE's num), and decodes again to itself;
// - the state the back-end reports (acked features and protocol features,
//   owner, every ring's size, translated addresses, base, started, enabled,
//   kick and call, the memory table) equals what the accepted messages
//   asked for.
import VCPUFreqVhostUser

enum VhostUserTarget {
    /// The devices driven: the daemon's SCMI device (SCMIDevice.virtioDevice), and variants.
    static let devices: [VhostUserBackend.Device] = [
        .init(queueCount: 2, maximumQueueSize: 1024, features: [.version1, .indirectDescriptors, .device(bit: 0)], protocolFeatures: .multipleQueues),
        .init(queueCount: 2, maximumQueueSize: 1024, features: [.version1, .indirectDescriptors, .device(bit: 0)], protocolFeatures: [.multipleQueues, .replyAck]),
        .init(queueCount: 1, maximumQueueSize: 256, features: [.version1], protocolFeatures: []),
        .init(queueCount: 256, maximumQueueSize: 32768, features: [.version1, .device(bit: 23)], protocolFeatures: [.replyAck]),
    ]

    /// Where fake mappings point: translation never dereferences them.
    nonisolated(unsafe) static let fakeBase = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)

    /// What the accepted messages asked for.
    struct Model {
        var acked: UInt64 = 0
        var ackedProtocol: UInt64 = 0
        var owned = false
        var rings: [VhostUserBackend.Ring]
        var regions: [VhostUserMemoryRegion] = []
        var table: [VhostUserMemoryRegion]?
    }

    static func run(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let device = input.element(of: devices)
        var backend = VhostUserBackend(device: device)
        var model = Model(rings: Array(repeating: VhostUserBackend.Ring(), count: device.queueCount))
        var framer = VhostUserFramer()
        var pending = 0
        var stream: [UInt8] = []
        stream.reserveCapacity(512)
        var messages = 0
        while !input.isExhausted, messages < 64 {
            // One piece of the stream: descriptors with its first receive, how it is cut, its bytes.
            let descriptors = input.byte() < 160 ? -1 : Int(input.byte() % 12)
            let cut = Int(input.byte())
            piece(&input, model: model, device: device, into: &stream)
            let attach = descriptors >= 0 ? descriptors : expectedDescriptors(stream)
            var offset = 0, first = true
            while offset < stream.count {
                let count = min(framer.wanted, stream.count - offset, cut == 0 ? Int.max : cut)
                let taken = framer.receive { buffer in
                    stream.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)])) }
                    return count
                }
                invariant(taken == count, "the framer took \(taken) of \(count) bytes")
                offset += count
                if first {
                    pending += attach
                    first = false
                    // The connection refuses more than 8 descriptors with one message.
                    if pending > VhostUserLimits.maximumRegions { return }
                }
                let complete: Bool
                do throws(VhostUserError) {
                    complete = try framer.isComplete()
                } catch {
                    invariant(!error.description.isEmpty, "a header refused without a reason")
                    return
                }
                guard complete else { continue }
                messages += 1
                let open = framer.withMessage { header, payload in
                    handle(header: header, payload: payload, descriptors: pending, backend: &backend, model: &model, device: device)
                }
                pending = 0
                guard open else { return }
            }
        }
    }

    /// The descriptors a well-formed message of this stream piece brings.
    static func expectedDescriptors(_ stream: [UInt8]) -> Int {
        guard stream.count >= 12 else { return 0 }
        let request = stream.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        switch VhostUserRequestCode(rawValue: request) {
        case .setMemTable: return stream.count >= 16 ? min(Int(stream.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 12, as: UInt32.self) }), 8) : 0
        case .setVringKick, .setVringCall, .setVringErr: return stream.count >= 14 && stream[13] & 1 == 0 ? 1 : 0
        default: return 0
        }
    }

    /// Appends one piece to `stream` (which it clears first): a well-formed
    /// message of any request with fields near what the model's state makes
    /// interesting, possibly corrupted, or raw bytes.
    static func piece(_ input: inout FuzzInput, model: Model, device: VhostUserBackend.Device, into stream: inout [UInt8]) {
        stream.removeAll(keepingCapacity: true)
        let kind = input.byte()
        if kind >= 232 {
            stream += input.take(Int(input.integer(UInt16.self) % 600))
            return
        }
        let queue = { (input: inout FuzzInput) -> UInt32 in
            input.byte() < 240 ? UInt32(input.index(below: device.queueCount)) : UInt32(truncatingIfNeeded: input.value(near: [0, 1, 2, 255, 256]))
        }
        let user = model.regions.map(\.userAddress) + [0x7F00_0000_0000]
        let address = { (input: inout FuzzInput) -> UInt64 in
            input.byte() < 224 ? input.element(of: user) &+ UInt64(input.integer(UInt16.self)) : input.integer()
        }
        let offered = device.features.rawValue | VirtioFeatures.protocolFeatures.rawValue
        let request: VhostUserRequest
        switch kind % 19 {
        case 0: request = .getFeatures
        case 1: request = .setFeatures(input.byte() < 224 ? offered & input.integer() : input.integer())
        case 2: request = .setOwner
        case 3: request = .resetOwner
        case 4:
            let count = input.byte() < 240 ? 1 + input.index(below: 8) : input.index(below: 12)
            request = .setMemoryTable((0..<count).map { index in
                let base = 0x4000_0000 + UInt64(index) << 30
                return input.byte() < 200
                    ? VhostUserMemoryRegion(guestAddress: base, size: 0x1000_0000, userAddress: 0x7F00_0000_0000 + base, mmapOffset: 0)
                    : VhostUserMemoryRegion(
                        guestAddress: input.value(near: [0, base, 1 << 63, .max]), size: input.value(near: [0, 0x1000, 0x1000_0000, .max]),
                        userAddress: input.value(near: [0x7F00_0000_0000, .max]), mmapOffset: input.value(near: [0, 0x1000, .max]))
            })
        case 5:
            let index = queue(&input)
            request = .setVringNum(index: index, size: UInt32(truncatingIfNeeded: input.value(near: [0, 1, 64, 256, 1024, 2048, 32768, 65536])))
        case 6:
            let index = queue(&input)
            request = .setVringAddress(.init(
                index: index, flags: input.byte() < 240 ? 0 : input.integer(), descriptorTable: address(&input),
                usedRing: address(&input), availableRing: address(&input), log: input.byte() < 240 ? 0 : input.integer()))
        case 7:
            let index = queue(&input)
            request = .setVringBase(index: index, base: UInt32(truncatingIfNeeded: input.value(near: [0, 5, 65535, 65536])))
        case 8: request = .getVringBase(index: queue(&input))
        case 9: request = .setVringKick(index: queue(&input), hasDescriptor: input.byte() < 200)
        case 10: request = .setVringCall(index: queue(&input), hasDescriptor: input.byte() < 200)
        case 11: request = .setVringError(index: queue(&input), hasDescriptor: input.byte() < 200)
        case 12: request = .getProtocolFeatures
        case 13: request = .setProtocolFeatures(input.byte() < 224 ? device.protocolFeatures.rawValue & input.integer() : input.integer())
        case 14: request = .getQueueNum
        case 15: request = .setVringEnable(index: queue(&input), enabled: input.bool())
        case 16: request = .getMaxMemorySlots
        case 17: request = .other(VhostUserRequestCode(rawValue: input.byte() < 128 ? UInt32(input.byte()) : input.integer()))
        default: request = .setFeatures(offered & ~VirtioFeatures.indirectDescriptors.rawValue)
        }
        let flags: UInt32 = input.byte() < 200 ? 0 : (input.bool() ? VhostUserHeader.needReplyFlag : input.integer())
        request.encode(flags: flags, into: &stream)
        // Corruptions: a header field, a byte of the payload, a cut or an extension.
        switch input.byte() {
        case 0..<208: break
        case 208..<216: stream.replaceSubrange(0..<4, with: withUnsafeBytes(of: input.integer(UInt32.self), Array.init))
        case 216..<224: stream.replaceSubrange(8..<12, with: withUnsafeBytes(of: UInt32(truncatingIfNeeded: input.value(near: [0, 8, 40, 4096, 4097])), Array.init))
        case 224..<240 where stream.count > 12: stream[12 + input.index(below: stream.count - 12)] ^= input.byte() | 1
        case 240..<248: stream.removeLast(min(stream.count, 1 + input.index(below: 8)))
        default: stream += input.chunk(maximum: 16)
        }
    }

    /// One complete message; false when the connection closes.
    static func handle(
        header: VhostUserHeader, payload: UnsafeRawBufferPointer, descriptors: Int, backend: inout VhostUserBackend,
        model: inout Model, device: VhostUserBackend.Device
    ) -> Bool {
        let decoded = Result { () throws(VhostUserError) in try VhostUserRequest.decode(header: header, payload: payload) }
        let request: VhostUserRequest
        switch decoded {
        case .failure(let error):
            invariant(!error.description.isEmpty, "\(header.request) refused without a reason")
            invariant(expectedLayout(header: header, payload: payload) == nil, "\(header.request) of \(payload.count) bytes refused: \(error)")
            return false
        case .success(let value):
            request = value
            invariant(expectedLayout(header: header, payload: payload) != nil || value.code != header.request || isOther(value),
                "\(header.request) of \(payload.count) bytes decoded as \(value)")
        }
        checkCodec(request, header: header, payload: payload)

        let before = snapshot(backend)
        let expected = expect(request, header: header, descriptors: descriptors, model: model, device: device)
        let outcome = Result { () throws(VhostUserError) in
            try backend.handle(request, header: header, descriptorCount: descriptors) { address, count in
                translate(address, count, table: model.table)
            }
        }
        switch (outcome, expected) {
        case (.failure(let error), .failure(let why)):
            invariant(!error.description.isEmpty, "\(request) refused without a reason (model: \(why))")
            invariant(snapshot(backend) == before, "\(request) was refused (\(error)) but changed the back-end's state")
            return false
        case (.failure(let error), .success):
            invariant(false, "\(request) with \(descriptors) descriptors was refused (\(error)); the model accepts it")
            return false
        case (.success(let outcome), .failure(let why)):
            // The connection checks the memory table itself (GuestMemoryTable): a bad one closes it too.
            if case .replaceMemory(let regions) = outcome.effect, why.hasPrefix("table:") {
                let table = Result { () throws(VhostUserError) in
                    try GuestMemoryTable(regions: regions.map {
                        GuestMemoryRegion(guestAddress: $0.guestAddress, size: $0.size, userAddress: $0.userAddress, base: fakeBase)
                    })
                }
                let mappable = regions.allSatisfy { $0.mmapOffset.addingReportingOverflow($0.size).overflow == false && $0.mmapOffset &+ $0.size <= UInt64(Int.max) }
                if case .failure(let error) = table {
                    invariant(!error.description.isEmpty, "a memory table refused without a reason")
                } else {
                    invariant(!mappable, "the memory table \(regions) was accepted; the model refuses it: \(why)")
                }
                return false
            }
            invariant(false, "\(request) with \(descriptors) descriptors was handled (\(outcome)); the model refuses it: \(why)")
            return false
        case (.success(let outcome), .success(let next)):
            model = next.model
            invariant(outcome.reply == next.reply, "\(request): reply \(String(describing: outcome.reply)), expected \(String(describing: next.reply))")
            if let reply = outcome.reply {
                var bytes: [UInt8] = []
                reply.encode(into: &bytes)
                checkReply(bytes, request: header.request)
            }
            let state = snapshot(backend)
            invariant(state == snapshot(model), "after \(request) the back-end reports \(state), the model \(snapshot(model))")
            return true
        }
    }

    static func isOther(_ request: VhostUserRequest) -> Bool {
        if case .other = request { return true }
        return false
    }

    /// The payload layout vhost-user.rst gives the request: nil when these
    /// bytes are not one (the decoder must refuse them).
    static func expectedLayout(header: VhostUserHeader, payload: UnsafeRawBufferPointer) -> Int? {
        let size = payload.count
        func u32(_ offset: Int) -> UInt32 { payload.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
        func u64(_ offset: Int) -> UInt64 { payload.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        switch header.request {
        case .getFeatures, .setOwner, .resetOwner, .getProtocolFeatures, .getQueueNum, .getMaxMemSlots: return size == 0 ? 0 : nil
        case .setFeatures, .setProtocolFeatures: return size == 8 ? 8 : nil
        case .setVringNum, .setVringBase, .getVringBase: return size == 8 ? 8 : nil
        case .setVringEnable: return size == 8 && u32(4) <= 1 ? 8 : nil
        case .setVringAddr: return size == 40 ? 40 : nil
        case .setVringKick, .setVringCall, .setVringErr: return size == 8 && u64(0) & ~0x1FF == 0 ? 8 : nil
        case .setMemTable:
            // `nregions`, padding, then at least that many 32-byte regions (QEMU sends all 8 slots).
            guard size >= 8 else { return nil }
            let count = Int(u32(0))
            return (1...8).contains(count) && size >= 8 + 32 * count ? 8 + 32 * count : nil
        default: return 0
        }
    }

    /// decode(encode(m)) == m, and encode(m) is the message's own bytes but
    /// for the fields the spec says are ignored.
    static func checkCodec(_ request: VhostUserRequest, header: VhostUserHeader, payload: UnsafeRawBufferPointer) {
        guard !isOther(request) else { return }
        var again: [UInt8] = []
        request.encode(flags: header.flags & ~0x3, into: &again)
        var original: [UInt8] = withUnsafeBytes(of: header.request.rawValue.littleEndian, Array.init)
            + withUnsafeBytes(of: header.flags.littleEndian, Array.init) + withUnsafeBytes(of: header.size.littleEndian, Array.init)
            + Array(payload)
        switch request {
        case .setMemoryTable(let regions):
            original = Array(original.prefix(12 + 8 + 32 * regions.count))
            original.replaceSubrange(8..<12, with: withUnsafeBytes(of: UInt32(8 + 32 * regions.count).littleEndian, Array.init))
            original.replaceSubrange(16..<20, with: [0, 0, 0, 0])
        case .getVringBase:
            original.replaceSubrange(16..<20, with: [0, 0, 0, 0])
        default: break
        }
        invariant(again == original, "\(request) re-encodes to \(again), not \(original)")
        let back = again.withUnsafeBytes { raw in
            Result { () throws(VhostUserError) in
                let header = try VhostUserHeader.decode(UnsafeRawBufferPointer(rebasing: raw[0..<12]))
                return try VhostUserRequest.decode(header: header, payload: UnsafeRawBufferPointer(rebasing: raw[12...]))
            }
        }
        invariant(back == .success(request), "\(request) does not survive encode/decode: \(back)")
    }

    /// A reply as it goes on the wire: the request's code, version 1 with the
    /// reply flag, a payload of its stated size, never more than the protocol allows.
    static func checkReply(_ bytes: [UInt8], request: VhostUserRequestCode) {
        invariant(bytes.count >= 12 && bytes.count <= VhostUserLimits.headerSize + VhostUserLimits.maximumPayload, "a reply of \(bytes.count) bytes")
        let words = bytes.withUnsafeBytes { raw in (0..<3).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self) } }
        invariant(words[0] == request.rawValue, "a reply to \(request) with request code \(words[0])")
        invariant(words[1] == VhostUserHeader.version | VhostUserHeader.replyFlag, "a reply with flags 0x\(String(words[1], radix: 16))")
        invariant(Int(words[2]) == bytes.count - 12 && words[2] == 8, "a reply of \(bytes.count) bytes says its payload is \(words[2])")
    }

    /// The front-end user address range's guest-physical address in the table.
    static func translate(_ address: UInt64, _ count: Int, table: [VhostUserMemoryRegion]?) -> UInt64? {
        for region in table ?? [] where address >= region.userAddress && address - region.userAddress < region.size {
            if UInt64(count) <= region.size - (address - region.userAddress) { return region.guestAddress + (address - region.userAddress) }
        }
        return nil
    }

    struct Next {
        var model: Model
        var reply: VhostUserBackend.Reply?
    }

    /// The model: what vhost-user.rst (and docs/scmi.md for this back-end's
    /// choices) says a message does in this state, or why it is refused.
    static func expect(
        _ request: VhostUserRequest, header: VhostUserHeader, descriptors: Int, model: Model, device: VhostUserBackend.Device
    ) -> Result<Next, Reason> {
        var next = model
        var reply: VhostUserBackend.Reply?
        let code = header.request
        func fail(_ why: String) -> Result<Next, Reason> { .failure(Reason(why)) }
        let wantDescriptors: Int
        switch request {
        case .setMemoryTable(let regions): wantDescriptors = regions.count
        case .setVringKick(_, let has), .setVringCall(_, let has), .setVringError(_, let has): wantDescriptors = has ? 1 : 0
        default: wantDescriptors = 0
        }
        guard descriptors == wantDescriptors else { return fail("\(descriptors) descriptors, \(wantDescriptors) due") }
        func ring(_ index: UInt32) -> Int? { index < UInt32(device.queueCount) ? Int(index) : nil }
        let offered = device.features.rawValue | VirtioFeatures.protocolFeatures.rawValue
        let protocolNegotiated = model.acked & VirtioFeatures.protocolFeatures.rawValue != 0
        switch request {
        case .getFeatures: reply = .u64(code, offered)
        case .setFeatures(let bits):
            guard bits & ~offered == 0 else { return fail("unoffered features") }
            next.acked = bits
        case .getProtocolFeatures: reply = .u64(code, device.protocolFeatures.rawValue)
        case .setProtocolFeatures(let bits):
            guard bits & ~device.protocolFeatures.rawValue == 0 else { return fail("unoffered protocol features") }
            next.ackedProtocol = bits
        case .getQueueNum:
            guard device.protocolFeatures.contains(.multipleQueues) else { return fail("GET_QUEUE_NUM without MQ") }
            reply = .u64(code, UInt64(device.queueCount))
        case .getMaxMemorySlots: return fail("CONFIGURE_MEM_SLOTS is not offered")
        case .other: return fail("not served")
        case .setOwner: next.owned = true
        case .resetOwner:
            next = Model(rings: Array(repeating: VhostUserBackend.Ring(), count: device.queueCount))
        case .setMemoryTable(let regions):
            next.regions = regions
            // The connection's own checks (docs/scmi.md): non-empty, no overflow, no overlap, mappable.
            for (index, region) in regions.enumerated() {
                let (end, overflow) = region.mmapOffset.addingReportingOverflow(region.size)
                guard region.size > 0, region.size <= UInt64(Int.max), !overflow, end <= UInt64(Int.max),
                    region.guestAddress <= UInt64.max - (region.size - 1), region.userAddress <= UInt64.max - (region.size - 1)
                else { return fail("table: region \(index) is empty or overflows") }
                for other in regions[..<index]
                where region.guestAddress <= other.guestAddress + (other.size - 1) && other.guestAddress <= region.guestAddress + (region.size - 1) {
                    return fail("table: region \(index) overlaps")
                }
            }
            next.table = regions
        case .setVringNum(let index, let size):
            guard let q = ring(index) else { return fail("no queue \(index)") }
            guard size > 0, size <= UInt32(device.maximumQueueSize), size & (size - 1) == 0 else { return fail("queue size \(size)") }
            next.rings[q].size = UInt16(size)
        case .setVringAddress(let addresses):
            guard let q = ring(addresses.index) else { return fail("no queue \(addresses.index)") }
            guard !model.regions.isEmpty else { return fail("no memory table") }
            guard addresses.flags & 1 == 0 else { return fail("dirty logging") }
            guard let descriptors = translate(addresses.descriptorTable, 1, table: model.table),
                let available = translate(addresses.availableRing, 1, table: model.table),
                let used = translate(addresses.usedRing, 1, table: model.table)
            else { return fail("ring outside the table") }
            next.rings[q].descriptorTable = descriptors
            next.rings[q].availableRing = available
            next.rings[q].usedRing = used
        case .setVringBase(let index, let base):
            guard let q = ring(index) else { return fail("no queue \(index)") }
            guard base <= 0xFFFF else { return fail("base \(base)") }
            next.rings[q].base = UInt16(base)
        case .getVringBase(let index):
            guard let q = ring(index) else { return fail("no queue \(index)") }
            reply = .vringState(code, index: index, num: UInt32(model.rings[q].base))
            next.rings[q].started = false
            next.rings[q].hasKick = false
        case .setVringKick(let index, let has):
            guard let q = ring(index) else { return fail("no queue \(index)") }
            next.rings[q].hasKick = has
            next.rings[q].started = true
            if !protocolNegotiated { next.rings[q].enabled = true }
        case .setVringCall(let index, let has):
            guard let q = ring(index) else { return fail("no queue \(index)") }
            next.rings[q].hasCall = has
        case .setVringError(let index, _):
            guard ring(index) != nil else { return fail("no queue \(index)") }
        case .setVringEnable(let index, let enabled):
            guard let q = ring(index) else { return fail("no queue \(index)") }
            guard protocolNegotiated else { return fail("ENABLE without protocol features") }
            next.rings[q].enabled = enabled
        }
        // REPLY_ACK (vhost-user.rst): with it negotiated, a message with
        // need_reply that has no reply of its own gets a u64 ack, 0 = success.
        // (A failure closes the connection instead of a non-zero ack.)
        let ackNegotiated = model.ackedProtocol & VhostUserProtocolFeatures.replyAck.rawValue != 0
        if reply == nil, header.needsReply, ackNegotiated { reply = .u64(code, 0) }
        return .success(Next(model: next, reply: reply))
    }

    struct Reason: Error {
        var text: String
        init(_ text: String) { self.text = text }
        func hasPrefix(_ prefix: String) -> Bool { text.hasPrefix(prefix) }
    }

    /// The state the back-end reports, comparable.
    struct State: Equatable, CustomStringConvertible {
        var acked: UInt64, ackedProtocol: UInt64, owned: Bool
        var rings: [VhostUserBackend.Ring]
        var regions: [VhostUserMemoryRegion]
        var description: String { "acked 0x\(String(acked, radix: 16))/0x\(String(ackedProtocol, radix: 16)) owned \(owned) rings \(rings) regions \(regions)" }
    }

    static func snapshot(_ backend: VhostUserBackend) -> State {
        State(acked: backend.ackedFeatures, ackedProtocol: backend.ackedProtocolFeatures, owned: backend.owned, rings: backend.rings, regions: backend.memoryRegions)
    }

    static func snapshot(_ model: Model) -> State {
        State(acked: model.acked, ackedProtocol: model.ackedProtocol, owned: model.owned, rings: model.rings, regions: model.regions)
    }

    // MARK: Seeds

    /// One well-formed piece: descriptors as due (selector < 160), whole
    /// receives (cut 0), the message, no corruption.
    static func seedPiece(_ request: VhostUserRequest, flags: UInt32 = 0, cut: UInt8 = 0) -> [UInt8] {
        var bytes: [UInt8] = []
        request.encode(flags: flags, into: &bytes)
        return [0, cut, 232] + withUnsafeBytes(of: UInt16(bytes.count).littleEndian, Array.init) + bytes
    }

    static let region = VhostUserMemoryRegion(guestAddress: 0x4000_0000, size: 0x1000_0000, userAddress: 0x7F00_4000_0000, mmapOffset: 0)

    static func rings(_ order: [(UInt32) -> VhostUserRequest], queues: UInt32 = 2) -> [VhostUserRequest] {
        (0..<queues).flatMap { queue in order.map { $0(queue) } }
    }

    static func ringAddresses(_ queue: UInt32) -> VringAddresses {
        let base = region.userAddress + UInt64(queue) * 0x10000
        return VringAddresses(index: queue, descriptorTable: base, usedRing: base + 0x2000, availableRing: base + 0x1000)
    }

    /// QEMU 10's vhost-user-scmi start-up (vhost_dev_init, then
    /// vhost_dev_start with both queues, then a stop), crosvm's front-end
    /// (docs/scmi.md), a front-end without protocol features, and one that
    /// negotiates REPLY_ACK and asks for acks; each as whole receives and cut
    /// into 1-byte and 5-byte receives.
    static func seeds() -> [FuzzSeed] {
        let features: UInt64 = 1 << 32 | 1 << 30 | 1 << 28 | 1
        let qemu: [VhostUserRequest] = [
            .setOwner, .getFeatures, .getProtocolFeatures, .setProtocolFeatures(1), .getQueueNum,
            .setFeatures(features), .setMemoryTable([region]),
        ] + rings([
            { .setVringNum(index: $0, size: 1024) }, { .setVringBase(index: $0, base: 0) }, { .setVringAddress(ringAddresses($0)) },
            { .setVringKick(index: $0, hasDescriptor: true) }, { .setVringCall(index: $0, hasDescriptor: true) },
        ]) + rings([{ .setVringEnable(index: $0, enabled: true) }])
            + rings([{ .setVringEnable(index: $0, enabled: false) }, { .getVringBase(index: $0) }])
        let crosvm: [VhostUserRequest] = [
            .setOwner, .getFeatures, .setFeatures(1 << 30), .getProtocolFeatures, .setProtocolFeatures(1), .getQueueNum,
            .setMemoryTable([region]),
        ] + rings([
            { .setVringNum(index: $0, size: 256) }, { .setVringAddress(ringAddresses($0)) }, { .setVringBase(index: $0, base: 0) },
            { .setVringCall(index: $0, hasDescriptor: true) }, { .setVringKick(index: $0, hasDescriptor: true) },
            { .setVringEnable(index: $0, enabled: true) },
        ]) + [.setFeatures(1 << 32 | 1 << 30 | 1)]
        let legacy: [VhostUserRequest] = [
            .getFeatures, .setFeatures(1 << 32 | 1), .setMemoryTable([region]), .setVringNum(index: 0, size: 64),
            .setVringAddress(ringAddresses(0)), .setVringKick(index: 0, hasDescriptor: false), .setVringCall(index: 0, hasDescriptor: true),
            .getVringBase(index: 0), .resetOwner,
        ]
        var seeds: [FuzzSeed] = []
        for (name, sequence, device) in [("qemu", qemu, 0), ("crosvm", crosvm, 0), ("no-protocol-features", legacy, 0)] {
            for cut: UInt8 in [0, 1, 5] {
                seeds.append(FuzzSeed(name: "\(name)-cut\(cut)", bytes: [UInt8(device)] + sequence.flatMap { seedPiece($0, cut: cut) }))
            }
        }
        // REPLY_ACK: QEMU asks for acks on SET_MEM_TABLE and the ring messages when it is offered.
        let ack = VhostUserHeader.needReplyFlag
        let acked: [(VhostUserRequest, UInt32)] = [
            (.getFeatures, 0), (.getProtocolFeatures, 0), (.setProtocolFeatures(1 | 8), 0), (.setFeatures(features), ack),
            (.setMemoryTable([region]), ack), (.setVringNum(index: 0, size: 1024), ack), (.setVringBase(index: 0, base: 0), ack),
            (.setVringAddress(ringAddresses(0)), ack), (.setVringKick(index: 0, hasDescriptor: true), ack),
            (.setVringCall(index: 0, hasDescriptor: true), ack), (.setVringEnable(index: 0, enabled: true), ack), (.getVringBase(index: 0), ack),
        ]
        seeds.append(FuzzSeed(name: "reply-ack", bytes: [1] + acked.flatMap { seedPiece($0.0, flags: $0.1) }))
        return seeds
    }
}
