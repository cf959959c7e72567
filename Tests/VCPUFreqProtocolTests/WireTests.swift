import Testing
@testable import VCPUFreqProtocol

private func encoded(_ message: ClientMessage, id: UInt32 = 7) -> [UInt8] {
    var writer = ByteWriter()
    message.encode(id: id, into: &writer)
    return writer.bytes
}

private func decodeClient(_ bytes: [UInt8]) throws(ProtocolViolation) -> (MessageHeader, ClientMessage) {
    let result: Result<(MessageHeader, ClientMessage), ProtocolViolation> = bytes.withUnsafeBytes { raw in
        do throws(ProtocolViolation) { return .success(try ClientMessage.decode(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}

private func decodeDaemon(_ bytes: [UInt8]) throws(ProtocolViolation) -> (MessageHeader, DaemonMessage) {
    let result: Result<(MessageHeader, DaemonMessage), ProtocolViolation> = bytes.withUnsafeBytes { raw in
        do throws(ProtocolViolation) { return .success(try DaemonMessage.decode(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}

/// Little-endian field writer for hand-made packets, independent of ByteWriter.
private func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
}

private func packet(type: UInt16, flags: UInt16 = 0, id: UInt32 = 1, reserved: UInt32 = 0, body: [UInt8], length: UInt32? = nil) -> [UInt8] {
    le(type) + le(flags) + le(length ?? UInt32(16 + body.count)) + le(id) + le(reserved) + body
}

@Suite struct WireTests {
    static let clientMessages: [ClientMessage] = [
        .hello(.init(minimumVersion: 1, maximumVersion: 3, features: 0x1f, clientName: "reference VMM ✓")),
        .attach(.init(vmName: "android", profile: "phone", threadIDs: [101, 102, 2_000_000_000])),
        .attach(.init(vmName: "x", threadIDs: Array(1...1024))),
        .detach,
        .read(.init(vcpu: 3, width: 4, offset: 0x3010)),
        .write(.init(vcpu: 3, width: 8, offset: .max, value: .max, sync: false)),
        .write(.init(vcpu: 0, width: 4, offset: 0xc, value: 2, sync: true)),
        .mapShared(.init(flags: 3)),
        .status(.init(flags: 1)),
    ]

    @Test(arguments: clientMessages)
    func clientMessagesRoundTrip(message: ClientMessage) throws {
        let bytes = encoded(message, id: 0xDEAD_BEEF)
        #expect(bytes.count <= Wire.maximumClientMessage)
        let (header, decoded) = try decodeClient(bytes)
        #expect(decoded == message)
        #expect(header.id == 0xDEAD_BEEF)
        #expect(Int(header.length) == bytes.count)
    }

    /// The exact bytes of a READ, as a C VMM would write them from docs/protocol.md.
    @Test func readLayoutIsTheDocumentedOne() throws {
        let bytes = encoded(.read(.init(vcpu: 2, width: 4, offset: 0x2000)), id: 9)
        #expect(bytes == packet(type: 0x04, id: 9, body: le(UInt32(2)) + le(UInt32(4)) + le(UInt64(0x2000))))
    }

    static let daemonMessages: [DaemonMessage] = [
        .helloOK(.init(version: 1, features: 0x1f, maximumVCPUs: 1024, daemonVersion: "0.1.0")),
        .attachOK(.init(vmID: 4, vcpuCount: 8, baseAddress: 0x104_0000, profile: "android", actuators: "clamp=none latency=slice")),
        .detachOK(restoredThreads: 8),
        .readOK(value: 1_803_000, invalid: 0),
        .writeOK(invalid: 3),
        .sharedOK(.init(memfdSize: 0x9000, pageOffset: 0, pageSize: 0x1000, pageDeviceOffset: 0x80_0000, mirrorOffset: 0x1000,
                        mirrorSize: 0x8000, mirrorDeviceOffset: 0, doorbellDeviceOffset: 0x88_0000, doorbellStride: 4,
                        doorbellCount: 8, doorbellMessages: 1)),
        .doorbells(first: 240, count: 16),
        .statusOK(chunk: 0, chunks: 2, json: Array("{\"vms\":[]}".utf8)),
        .error(code: .foreignThread, failedType: 2, message: "TID 77 is not a thread of pid 12"),
    ]

    @Test(arguments: daemonMessages)
    func daemonMessagesRoundTrip(message: DaemonMessage) throws {
        var writer = ByteWriter()
        message.encode(id: 42, into: &writer)
        let (header, decoded) = try decodeDaemon(writer.bytes)
        #expect(decoded == message)
        #expect(header.id == 42)
    }

    @Test(arguments: [
        ("short", [UInt8](repeating: 0, count: 15), ErrorCode.malformed),
        ("length mismatch", packet(type: 3, body: [], length: 17), .malformed),
        ("reserved", packet(type: 3, reserved: 1, body: []), .malformed),
        ("unknown type", packet(type: 0x42, body: []), .unknownType),
        ("reply type", packet(type: 0x84, body: [UInt8](repeating: 0, count: 16)), .unknownType),
        ("sync on read", packet(type: 4, flags: 1, body: [UInt8](repeating: 0, count: 16)), .malformed),
        ("unknown flag", packet(type: 5, flags: 2, body: [UInt8](repeating: 0, count: 24)), .malformed),
        ("bad magic", packet(type: 1, body: le(UInt32(1)) + le(UInt16(1)) + le(UInt16(1)) + le(UInt32(0)) + le(UInt16(0))), .malformed),
        ("min > max", packet(type: 1, body: le(Wire.magic) + le(UInt16(2)) + le(UInt16(1)) + le(UInt32(0)) + le(UInt16(0))), .malformed),
        ("truncated read", packet(type: 4, body: le(UInt32(0)) + le(UInt32(4))), .malformed),
        ("trailing bytes", packet(type: 3, body: [0]), .malformed),
        ("attach zero vcpus", packet(type: 2, body: le(UInt16(1)) + [0x61] + le(UInt16(0)) + le(UInt32(0)) + le(UInt32(0))), .malformed),
        ("attach count mismatch", packet(type: 2, body: le(UInt16(1)) + [0x61] + le(UInt16(0)) + le(UInt32(2)) + le(UInt32(0)) + le(UInt32(5))), .malformed),
        ("attach tid 0", packet(type: 2, body: le(UInt16(1)) + [0x61] + le(UInt16(0)) + le(UInt32(1)) + le(UInt32(0)) + le(UInt32(0))), .malformed),
        ("attach negative tid", packet(type: 2, body: le(UInt16(1)) + [0x61] + le(UInt16(0)) + le(UInt32(1)) + le(UInt32(0)) + le(UInt32(0xFFFF_FFFF))), .malformed),
        ("attach empty name", packet(type: 2, body: le(UInt16(0)) + le(UInt16(0)) + le(UInt32(1)) + le(UInt32(0)) + le(UInt32(5))), .malformed),
        ("attach long name", packet(type: 2, body: le(UInt16(65)) + [UInt8](repeating: 0x61, count: 65) + le(UInt16(0)) + le(UInt32(1)) + le(UInt32(0)) + le(UInt32(5))), .malformed),
        ("invalid utf8", packet(type: 2, body: le(UInt16(2)) + [0xC3, 0x28] + le(UInt16(0)) + le(UInt32(1)) + le(UInt32(0)) + le(UInt32(5))), .malformed),
        ("NUL in name", packet(type: 2, body: le(UInt16(2)) + [0x61, 0] + le(UInt16(0)) + le(UInt32(1)) + le(UInt32(0)) + le(UInt32(5))), .malformed),
        ("string past end", packet(type: 2, body: le(UInt16(40)) + [0x61]), .malformed),
        ("attach flags", packet(type: 2, body: le(UInt16(1)) + [0x61] + le(UInt16(0)) + le(UInt32(1)) + le(UInt32(1)) + le(UInt32(5))), .malformed),
        ("map flags", packet(type: 6, body: le(UInt32(4))), .malformed),
        ("status flags", packet(type: 7, body: le(UInt32(2))), .malformed),
        ("too many vcpus", packet(type: 2, body: le(UInt16(1)) + [0x61] + le(UInt16(0)) + le(UInt32(1025)) + le(UInt32(0))), .malformed),
    ] as [(String, [UInt8], ErrorCode)])
    func rejectsMalformedClientPackets(label: String, bytes: [UInt8], code: ErrorCode) {
        do {
            let decoded = try decodeClient(bytes)
            Issue.record("\(label): decoded \(decoded)")
        } catch {
            #expect(error.code == code, "\(label): \(error)")
        }
    }

    @Test func longStringsAreCutOnACharacterBoundary() throws {
        let name = String(repeating: "é", count: 200)  // 400 bytes of UTF-8
        var writer = ByteWriter()
        DaemonMessage.error(code: .malformed, failedType: 0, message: name).encode(id: 1, into: &writer)
        guard case .error(_, _, let message) = try decodeDaemon(writer.bytes).1 else { Issue.record("not an error"); return }
        #expect(message.utf8.count <= Wire.maximumStringLength)
        #expect(message.utf8.count >= Wire.maximumStringLength - 1)
        #expect(message.allSatisfy { $0 == "é" })
    }

    /// SplitMix64: a seeded generator so a failure reproduces.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Random packets and random mutations of valid ones: decoding returns a
    /// message or a violation, never traps, and whatever decodes re-encodes to
    /// the same bytes (no two encodings of one message).
    @Test func fuzzedPacketsNeverTrap() throws {
        var rng = SplitMix64(state: 0x5EED)
        let seeds = Self.clientMessages.map { encoded($0) }
        var decodedCount = 0
        for round in 0..<200_000 {
            var bytes: [UInt8]
            if round % 4 == 0 {
                bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                bytes = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...3, using: &rng) where !bytes.isEmpty {
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0: bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                    case 1: bytes.removeLast(Int.random(in: 0...min(8, bytes.count), using: &rng))
                    default: bytes.append(UInt8.random(in: 0...255, using: &rng))
                    }
                }
            }
            if let (header, message) = try? decodeClient(bytes) {
                decodedCount += 1
                #expect(encoded(message, id: header.id) == bytes)
            }
        }
        #expect(decodedCount > 1000, "mutations should leave many packets valid")
    }
}
