// The wire protocol's codecs (docs/protocol.md) on what a peer sends: any
// packet, and any message our own encoders can be asked to write.
//
// Raw packets: a client packet either decodes, and then encodes back to the
// very same bytes (the encoding is canonical: no field, flag or reserved
// bit survives that the decoder does not check), or is rejected with a
// reason. A daemon packet (what a client library decodes) either decodes to
// a message that survives encode/decode unchanged, or is rejected with a
// reason.
// Built messages: our encoders cut a string field longer than the protocol
// allows (ByteWriter.fitted); with its strings so cut, decode(encode(m)) ==
// m for every message whose fields are within the protocol's limits, and
// any other is rejected with a reason.
import VCPUFreqCore
import VCPUFreqProtocol

enum ProtocolTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        switch input.byte() % 4 {
        case 0: checkBuilt(clientMessage(&input), id: input.integer())
        case 1: checkBuilt(daemonMessage(&input), id: input.integer())
        default: checkRaw(input.rest())
        }
    }

    // MARK: Raw packets

    static func checkRaw(_ packet: UnsafeRawBufferPointer) {
        switch decodeClient(packet) {
        case .success(let (header, message)):
            let again = encoded(message, id: header.id)
            invariant(again.elementsEqual(packet), "\(message) re-encodes to \(again), not the \(packet.count) bytes it came from")
        case .failure(let violation):
            invariant(!violation.message.isEmpty, "client packet rejected (\(violation.code)) without a reason")
        }
        switch decodeDaemon(packet) {
        case .success(let (header, message)):
            let again = encoded(message, id: header.id)
            let decoded = again.withUnsafeBytes { decodeDaemon($0) }
            invariant(decoded.map(\.message) == .success(message), "\(message) does not survive encode/decode: \(decoded)")
        case .failure(let violation):
            invariant(!violation.message.isEmpty, "daemon packet rejected (\(violation.code)) without a reason")
        }
    }

    // MARK: Built messages

    static func checkBuilt(_ built: ClientMessage, id: UInt32) {
        let bytes = encoded(built, id: id)
        let message = fitted(built)
        let decoded = bytes.withUnsafeBytes { decodeClient($0) }
        switch decoded {
        case .success(let (header, back)):
            invariant(isWithinLimits(message), "\(message) is outside the protocol's limits but decoded as \(back)")
            invariant(back == message && header.id == id, "\(message) (id \(id)) decoded as \(back) (id \(header.id))")
        case .failure(let violation):
            invariant(!isWithinLimits(message), "\(message) is within the limits but was rejected: \(violation)")
            invariant(!violation.message.isEmpty, "\(message) rejected (\(violation.code)) without a reason")
        }
    }

    static func checkBuilt(_ built: DaemonMessage, id: UInt32) {
        let bytes = encoded(built, id: id)
        let message = fitted(built)
        invariant(bytes.count <= Wire.maximumDaemonMessage || message.type == .statusOK, "\(message.type) of \(bytes.count) bytes")
        switch bytes.withUnsafeBytes({ decodeDaemon($0) }) {
        case .success(let (header, back)):
            invariant(isWithinLimits(message), "\(message) is outside the protocol's limits but decoded as \(back)")
            invariant(back == message && header.id == id, "\(message) (id \(id)) decoded as \(back) (id \(header.id))")
        case .failure(let violation):
            invariant(!isWithinLimits(message), "\(message) is within the limits but was rejected: \(violation)")
            invariant(!violation.message.isEmpty, "\(message) rejected (\(violation.code)) without a reason")
        }
    }

    static func clientMessage(_ input: inout FuzzInput) -> ClientMessage {
        switch input.byte() % 7 {
        case 0:
            return .hello(.init(
                minimumVersion: input.integer(), maximumVersion: input.integer(), features: input.integer(),
                clientName: input.text()))
        case 1:
            let vmName = input.text(), profile = input.text()
            let count = input.bool() ? input.index(below: 8) : Int(input.integer(UInt16.self) % 1100)
            let tids = (0..<count).map { _ in input.bool() ? Int32(1 + input.index(below: 100_000)) : input.integer(Int32.self) }
            return .attach(.init(vmName: vmName, profile: profile, threadIDs: tids))
        case 2: return .detach
        case 3: return .read(.init(vcpu: input.integer(), width: input.integer(), offset: input.integer()))
        case 4:
            return .write(.init(
                vcpu: input.integer(), width: input.integer(), offset: input.integer(), value: input.integer(), sync: input.bool()))
        case 5: return .mapShared(.init(flags: input.bool() ? UInt32(input.byte() & 3) : input.integer()))
        default: return .status(.init(flags: input.bool() ? UInt32(input.byte() & 1) : input.integer()))
        }
    }

    static func daemonMessage(_ input: inout FuzzInput) -> DaemonMessage {
        switch input.byte() % 9 {
        case 0:
            return .helloOK(.init(
                version: input.integer(), features: input.integer(), maximumVCPUs: input.integer(), daemonVersion: input.text()))
        case 1:
            return .attachOK(.init(
                vmID: input.integer(), vcpuCount: input.integer(), baseAddress: input.integer(), profile: input.text(),
                actuators: input.text()))
        case 2: return .detachOK(restoredThreads: input.integer())
        case 3: return .readOK(value: input.integer(), invalid: input.integer())
        case 4: return .writeOK(invalid: input.integer())
        case 5:
            return .sharedOK(.init(
                memfdSize: input.integer(), pageOffset: input.integer(), pageSize: input.integer(),
                pageDeviceOffset: input.integer(), mirrorOffset: input.integer(), mirrorSize: input.integer(),
                mirrorDeviceOffset: input.integer(), doorbellDeviceOffset: input.integer(), doorbellStride: input.integer(),
                doorbellCount: input.integer(), doorbellMessages: input.integer()))
        case 6: return .doorbells(first: input.integer(), count: input.integer())
        case 7:
            return .statusOK(chunk: input.integer(), chunks: input.integer(), json: Array(input.chunk()))
        default:
            return .error(code: input.element(of: ErrorCode.allCases), failedType: input.integer(), message: input.text())
        }
    }

    /// The message as our encoder writes it: every string field fitted.
    static func fitted(_ message: ClientMessage) -> ClientMessage {
        switch message {
        case .hello(var hello):
            hello.clientName = String(ByteWriter.fitted(hello.clientName))
            return .hello(hello)
        case .attach(var attach):
            attach.vmName = String(ByteWriter.fitted(attach.vmName))
            attach.profile = String(ByteWriter.fitted(attach.profile))
            return .attach(attach)
        default:
            return message
        }
    }

    static func fitted(_ message: DaemonMessage) -> DaemonMessage {
        switch message {
        case .helloOK(var ok):
            ok.daemonVersion = String(ByteWriter.fitted(ok.daemonVersion))
            return .helloOK(ok)
        case .attachOK(var ok):
            ok.profile = String(ByteWriter.fitted(ok.profile))
            ok.actuators = String(ByteWriter.fitted(ok.actuators))
            return .attachOK(ok)
        case .error(let code, let type, let text):
            return .error(code: code, failedType: type, message: String(ByteWriter.fitted(text)))
        default:
            return message
        }
    }

    /// A string field the decoder accepts: valid UTF-8 (a Swift String
    /// always is), no NUL, at most `maximum` bytes.
    static func isValid(_ text: String, maximum: Int = Wire.maximumStringLength) -> Bool {
        text.utf8.count <= maximum && !text.utf8.contains(0)
    }

    static func isWithinLimits(_ message: ClientMessage) -> Bool {
        switch message {
        case .hello(let hello):
            return hello.minimumVersion <= hello.maximumVersion && isValid(hello.clientName)
        case .attach(let attach):
            return !attach.vmName.isEmpty && isValid(attach.vmName, maximum: Wire.maximumNameLength)
                && isValid(attach.profile, maximum: Wire.maximumNameLength)
                && (1...Wire.maximumVCPUs).contains(attach.threadIDs.count) && attach.threadIDs.allSatisfy { $0 > 0 }
        case .detach, .read, .write:
            return true
        case .mapShared(let request):
            return request.flags & ~ClientMessage.MapSharedRequest.known == 0
        case .status(let request):
            return request.flags & ~ClientMessage.StatusRequest.known == 0
        }
    }

    static func isWithinLimits(_ message: DaemonMessage) -> Bool {
        switch message {
        case .helloOK(let ok): return isValid(ok.daemonVersion)
        case .attachOK(let ok): return isValid(ok.profile) && isValid(ok.actuators)
        case .error(_, _, let text): return isValid(text)
        default: return true
        }
    }

    // MARK: Codec calls

    static func encoded(_ message: ClientMessage, id: UInt32) -> [UInt8] {
        var writer = ByteWriter()
        message.encode(id: id, into: &writer)
        return writer.bytes
    }

    static func encoded(_ message: DaemonMessage, id: UInt32) -> [UInt8] {
        var writer = ByteWriter()
        message.encode(id: id, into: &writer)
        return writer.bytes
    }

    static func decodeClient(_ packet: UnsafeRawBufferPointer) -> Result<(header: MessageHeader, message: ClientMessage), ProtocolViolation> {
        Result { () throws(ProtocolViolation) in try ClientMessage.decode(packet) }
    }

    static func decodeDaemon(_ packet: UnsafeRawBufferPointer) -> Result<(header: MessageHeader, message: DaemonMessage), ProtocolViolation> {
        Result { () throws(ProtocolViolation) in try DaemonMessage.decode(packet) }
    }

    // MARK: Seeds

    /// Every message type, valid, as built input and as raw packet.
    static func seeds() -> [FuzzSeed] {
        let client: [ClientMessage] = [
            .hello(.init(features: SharedPageABI.Feature.all.rawValue, clientName: "vcpufreq reference VMM")),
            .attach(.init(vmName: "android", profile: "android", threadIDs: [101, 102, 103, 104, 105, 106, 107, 108])),
            .detach,
            .read(.init(vcpu: 0, width: 4, offset: 0x8)),
            .write(.init(vcpu: 0, width: 4, offset: 0xc, value: 2, sync: true)),
            .write(.init(vcpu: 7, width: 4, offset: 0x7004, value: 2_802_000)),
            .mapShared(.init(flags: ClientMessage.MapSharedRequest.known)),
            .status(.init(flags: ClientMessage.StatusRequest.allVMs)),
        ]
        let daemon: [DaemonMessage] = [
            .helloOK(.init(version: 1, features: SharedPageABI.Feature.all.rawValue, maximumVCPUs: 1024, daemonVersion: "vcpufreq 0.1.0")),
            .attachOK(.init(vmID: 1, vcpuCount: 8, baseAddress: 0x104_0000, profile: "android", actuators: "clamp=none latency=slice affinity=on")),
            .readOK(value: 1_803_000, invalid: 0),
            .writeOK(invalid: 8),
            .doorbells(first: 0, count: 8),
            .statusOK(chunk: 0, chunks: 1, json: Array(#"{"daemon":{},"vms":[]}"#.utf8)),
            .error(code: .invalidState, failedType: 4, message: "READ needs an attached VM"),
        ]
        var seeds: [FuzzSeed] = []
        for message in client {
            seeds.append(FuzzSeed(name: "client-\(message.type)", bytes: [2] + encoded(message, id: 1)))
        }
        for message in daemon {
            seeds.append(FuzzSeed(name: "daemon-\(message.type)", bytes: [2] + encoded(message, id: 1)))
        }
        return seeds
    }
}
