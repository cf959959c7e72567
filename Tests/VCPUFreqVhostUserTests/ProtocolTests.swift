import Testing
import VCPUFreqVhostUser

/// Little-endian field writer for hand-made messages, independent of the codec.
func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
}

func message(_ request: UInt32, flags: UInt32 = 1, payload: [UInt8], size: UInt32? = nil) -> [UInt8] {
    le(request) + le(flags) + le(size ?? UInt32(payload.count)) + payload
}

func decode(_ bytes: [UInt8]) throws(VhostUserError) -> VhostUserRequest {
    let result = bytes.withUnsafeBytes { raw in
        Result { () throws(VhostUserError) in
            let header = try VhostUserHeader.decode(UnsafeRawBufferPointer(rebasing: raw[0..<12]))
            return try VhostUserRequest.decode(header: header, payload: UnsafeRawBufferPointer(rebasing: raw[12...]))
        }
    }
    return try result.get()
}

@Suite struct CodecTests {
    @Test func everyHandledRequestDecodes() throws {
        let regions = le(UInt32(2)) + le(UInt32(0))
            + le(UInt64(0)) + le(UInt64(0x1000)) + le(UInt64(0x7f00_0000_0000)) + le(UInt64(0))
            + le(UInt64(0x4000_0000)) + le(UInt64(0x2000_0000)) + le(UInt64(0x7f10_0000_0000)) + le(UInt64(0x1000))
        let cases: [([UInt8], VhostUserRequest)] = [
            (message(1, payload: []), .getFeatures),
            (message(2, payload: le(UInt64(0x1_0000_0001))), .setFeatures(0x1_0000_0001)),
            (message(3, payload: []), .setOwner),
            (message(4, payload: []), .resetOwner),
            (message(5, payload: regions), .setMemoryTable([
                .init(guestAddress: 0, size: 0x1000, userAddress: 0x7f00_0000_0000, mmapOffset: 0),
                .init(guestAddress: 0x4000_0000, size: 0x2000_0000, userAddress: 0x7f10_0000_0000, mmapOffset: 0x1000),
            ])),
            (message(8, payload: le(UInt32(1)) + le(UInt32(256))), .setVringNum(index: 1, size: 256)),
            (message(9, payload: le(UInt32(0)) + le(UInt32(0)) + le(UInt64(1)) + le(UInt64(2)) + le(UInt64(3)) + le(UInt64(4))),
             .setVringAddress(.init(index: 0, descriptorTable: 1, usedRing: 2, availableRing: 3, log: 4))),
            (message(10, payload: le(UInt32(0)) + le(UInt32(7))), .setVringBase(index: 0, base: 7)),
            (message(11, payload: le(UInt32(1)) + le(UInt32(0))), .getVringBase(index: 1)),
            (message(12, payload: le(UInt64(1))), .setVringKick(index: 1, hasDescriptor: true)),
            (message(13, payload: le(UInt64(0x100))), .setVringCall(index: 0, hasDescriptor: false)),
            (message(14, payload: le(UInt64(0x101))), .setVringError(index: 1, hasDescriptor: false)),
            (message(15, payload: []), .getProtocolFeatures),
            (message(16, payload: le(UInt64(1))), .setProtocolFeatures(1)),
            (message(17, payload: []), .getQueueNum),
            (message(18, payload: le(UInt32(0)) + le(UInt32(1))), .setVringEnable(index: 0, enabled: true)),
            (message(36, payload: []), .getMaxMemorySlots),
            (message(24, payload: Array(repeating: 0, count: 12)), .other(.getConfig)),
            (message(0xDEAD, payload: [1, 2, 3]), .other(VhostUserRequestCode(rawValue: 0xDEAD))),
        ]
        for (bytes, expected) in cases {
            #expect(try decode(bytes) == expected)
        }
    }

    @Test func malformedHeadersAndPayloadsAreRefused() {
        #expect(throws: VhostUserError.badFlags(0)) { try decode(message(1, flags: 0, payload: [])) }
        #expect(throws: VhostUserError.badFlags(2)) { try decode(message(1, flags: 2, payload: [])) }
        #expect(throws: VhostUserError.badFlags(5)) { try decode(message(1, flags: 5, payload: [])) }  // a reply
        #expect(throws: VhostUserError.payloadTooLarge(request: .getFeatures, size: 4097)) {
            try decode(message(1, payload: [], size: 4097))
        }
        // Too short, too long.
        #expect(throws: VhostUserError.badPayloadSize(request: .setFeatures, size: 4, expected: "at least 8")) {
            try decode(message(2, payload: le(UInt32(1))))
        }
        #expect(throws: VhostUserError.badPayloadSize(request: .getFeatures, size: 1, expected: "0")) {
            try decode(message(1, payload: [0]))
        }
        #expect(throws: VhostUserError.badPayloadSize(request: .setVringNum, size: 12, expected: "8")) {
            try decode(message(8, payload: le(UInt32(0)) + le(UInt32(1)) + le(UInt32(2))))
        }
        #expect(throws: VhostUserError.badMemoryTable("0 regions; 1...8 allowed")) {
            try decode(message(5, payload: le(UInt32(0)) + le(UInt32(0))))
        }
        #expect(throws: VhostUserError.badMemoryTable("9 regions; 1...8 allowed")) {
            try decode(message(5, payload: le(UInt32(9)) + le(UInt32(0)) + Array(repeating: 0, count: 9 * 32)))
        }
        #expect(throws: VhostUserError.badPayloadSize(request: .setMemTable, size: 40, expected: "72 or more")) {
            try decode(message(5, payload: le(UInt32(2)) + le(UInt32(0)) + Array(repeating: 0, count: 32)))
        }
        #expect(throws: VhostUserError.badPayloadSize(request: .setVringKick, size: 8, expected: "a u64 with only bits 0-8 set")) {
            try decode(message(12, payload: le(UInt64(0x200))))
        }
        #expect(throws: VhostUserError.badPayloadSize(request: .setVringEnable, size: 8, expected: "num 0 or 1")) {
            try decode(message(18, payload: le(UInt32(0)) + le(UInt32(2))))
        }
    }

    @Test func repliesHaveTheDocumentedBytes() {
        var bytes: [UInt8] = []
        VhostUserReply.u64(.getFeatures, 0x1_4000_0001, into: &bytes)
        #expect(bytes == le(UInt32(1)) + le(UInt32(5)) + le(UInt32(8)) + le(UInt64(0x1_4000_0001)))
        VhostUserReply.vringState(.getVringBase, index: 1, num: 42, into: &bytes)
        #expect(bytes == le(UInt32(11)) + le(UInt32(5)) + le(UInt32(8)) + le(UInt32(1)) + le(UInt32(42)))
    }
}

@Suite struct FramerTests {
    /// Feeds `stream` to a framer in pieces of `chunk` bytes at most (what a
    /// nonblocking socket may hand over) and collects the decoded requests.
    func frame(_ stream: [UInt8], chunk: Int) throws(VhostUserError) -> [VhostUserRequest] {
        var framer = VhostUserFramer()
        var offset = 0
        var requests: [VhostUserRequest] = []
        while offset < stream.count {
            var asked = 0
            let count = framer.receive { buffer in
                asked = buffer.count
                let n = min(buffer.count, chunk, stream.count - offset)
                for i in 0..<n { buffer[i] = stream[offset + i] }
                return n
            }
            // Never more than the current message lacks: the next message's bytes stay in the socket.
            #expect(asked <= 12 || asked <= stream.count)
            offset += count
            if try framer.isComplete() {
                let decoded = framer.withMessage { header, payload in
                    Result { () throws(VhostUserError) in try VhostUserRequest.decode(header: header, payload: payload) }
                }
                requests.append(try decoded.get())
                #expect(framer.isIdle)
            }
        }
        return requests
    }

    @Test(arguments: [1, 3, 12, 13, 100])
    func messagesSplitAnywhereAreReassembled(chunk: Int) throws {
        let stream = message(3, payload: []) + message(8, payload: le(UInt32(0)) + le(UInt32(64))) + message(1, payload: [])
        #expect(try frame(stream, chunk: chunk) == [.setOwner, .setVringNum(index: 0, size: 64), .getFeatures])
    }

    @Test func aReceiveNeverAsksForTheNextMessage() throws {
        var framer = VhostUserFramer()
        #expect(framer.wanted == 12)
        let header = message(8, payload: [], size: 8)
        _ = framer.receive { buffer in
            for i in 0..<12 { buffer[i] = header[i] }
            return 12
        }
        #expect(try framer.isComplete() == false)
        #expect(framer.wanted == 8)
    }

    @Test func aBadHeaderIsAnErrorOnceComplete() {
        var framer = VhostUserFramer()
        let bad = message(1, flags: 0, payload: [])
        _ = framer.receive { buffer in
            for i in 0..<12 { buffer[i] = bad[i] }
            return 12
        }
        #expect(throws: VhostUserError.badFlags(0)) { try framer.isComplete() }
    }
}

/// The front-end side (what the tests and the benchmark send) agrees with
/// the back-end's decoder, message by message.
@Suite struct FrontEndEncodingTests {
    @Test(arguments: [
        VhostUserRequest.getFeatures, .setFeatures(1 << 32 | 1), .setOwner, .resetOwner,
        .setMemoryTable([.init(guestAddress: 0x4000_0000, size: 1 << 20, userAddress: 0x7F00_0000_0000, mmapOffset: 4096)]),
        .setVringNum(index: 1, size: 256), .setVringBase(index: 0, base: 9), .getVringBase(index: 1),
        .setVringAddress(.init(index: 1, descriptorTable: 0x1000, usedRing: 0x3000, availableRing: 0x2000)),
        .setVringKick(index: 1, hasDescriptor: true), .setVringCall(index: 0, hasDescriptor: false), .setVringError(index: 1, hasDescriptor: true),
        .getProtocolFeatures, .setProtocolFeatures(1), .getQueueNum, .setVringEnable(index: 1, enabled: true), .getMaxMemorySlots,
    ])
    func encodedRequestsDecodeToThemselves(_ request: VhostUserRequest) throws {
        var bytes: [UInt8] = []
        request.encode(into: &bytes)
        let decoded = try bytes.withUnsafeBytes { raw throws(VhostUserError) -> VhostUserRequest in
            let header = try VhostUserHeader.decode(UnsafeRawBufferPointer(rebasing: raw[0..<12]))
            #expect(header.request == request.code && Int(header.size) == bytes.count - 12)
            return try VhostUserRequest.decode(header: header, payload: UnsafeRawBufferPointer(rebasing: raw[12...]))
        }
        #expect(decoded == request)
    }
}
