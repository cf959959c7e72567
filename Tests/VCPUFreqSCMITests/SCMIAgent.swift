import VCPUFreqCore
import VCPUFreqSCMI

/// The host side the platform asks for LEVEL_GET: a fixed kHz per vCPU,
/// and a record of which vCPUs were asked about.
final class FakeHost: SCMIPerformanceHost {
    var currentKHz: [Int: UInt32] = [:]
    private(set) var asked: [Int] = []

    func currentPerformanceKHz(vcpu: Int) -> UInt32 {
        asked.append(vcpu)
        return currentKHz[vcpu] ?? 0
    }
}

/// One response as the guest's agent reads it (Linux msg.c): the echoed
/// header, the status, the return values as bytes.
struct Response: Equatable {
    var header: UInt32
    var status: Int32
    var values: [UInt8]
    var outcome: SCMIOutcome

    /// The little-endian u32 return value `index`.
    func word(_ index: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(values[4 * index + $1]) << (8 * $1) }
    }

    func half(_ byteOffset: Int) -> UInt16 { UInt16(values[byteOffset]) | UInt16(values[byteOffset + 1]) << 8 }

    /// The NUL-terminated string in `values[offset..<offset+count]`.
    func string(at offset: Int, count: Int) -> String {
        let field = values[offset..<(offset + count)]
        return String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// Plays the guest's SCMI agent against a platform: builds requests byte by
/// byte (not with the code under test) and decodes responses.
struct Agent {
    var platform: SCMIPlatform
    let host = FakeHost()
    var token: UInt32 = 0

    init(_ platform: SCMIPlatform) { self.platform = platform }

    /// message id 7:0, type 9:8 (0 command), protocol 17:10, token 27:18.
    static func header(protocol: UInt8, message: UInt8, token: UInt32 = 0, type: UInt32 = 0) -> UInt32 {
        UInt32(message) | type << 8 | UInt32(`protocol`) << 10 | (token & 0x3FF) << 18
    }

    static func bytes(_ words: [UInt32]) -> [UInt8] {
        words.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
    }

    /// Sends raw request bytes; `copied` models a transport that copied
    /// only the first bytes of a longer message; `room` is the guest's
    /// response buffer.
    mutating func raw(_ request: [UInt8], copied: Int? = nil, room: Int = 8 + 128) -> Response {
        let response = UnsafeMutableRawBufferPointer.allocate(byteCount: room, alignment: 8)
        defer { response.deallocate() }
        response.initializeMemory(as: UInt8.self, repeating: 0xEE)
        let outcome = request.withUnsafeBytes { bytes in
            platform.handle(
                request: UnsafeRawBufferPointer(rebasing: bytes[0..<(copied ?? bytes.count)]), requestLength: request.count,
                response: response, host: host)
        }
        precondition(outcome.responseLength <= room, "the platform wrote past the response buffer")
        // Bytes past the reported length are untouched.
        for index in outcome.responseLength..<room { precondition(response[index] == 0xEE, "byte \(index) written beyond the length") }
        let written = Array(response[0..<outcome.responseLength])
        guard written.count >= 8 else { return Response(header: 0, status: 0, values: [], outcome: outcome) }
        let header = (0..<4).reduce(UInt32(0)) { $0 | UInt32(written[$1]) << (8 * $1) }
        let status = Int32(bitPattern: (4..<8).reduce(UInt32(0)) { $0 | UInt32(written[$1]) << (8 * ($1 - 4)) })
        return Response(header: header, status: status, values: Array(written[8...]), outcome: outcome)
    }

    /// A command of `protocol`/`message` with 32-bit parameters; a fresh token each time.
    mutating func call(_ protocolID: UInt8, _ message: UInt8, _ parameters: [UInt32] = [], room: Int = 8 + 128) -> Response {
        token = (token + 1) & 0x3FF
        let header = Self.header(protocol: protocolID, message: message, token: token)
        let response = raw(Self.bytes([header] + parameters), room: room)
        precondition(response.outcome.responseLength == 0 || response.header == header, "the header was not echoed")
        return response
    }

    mutating func base(_ message: UInt8, _ parameters: [UInt32] = [], room: Int = 8 + 128) -> Response {
        call(0x10, message, parameters, room: room)
    }

    mutating func perf(_ message: UInt8, _ parameters: [UInt32] = [], room: Int = 8 + 128) -> Response {
        call(0x13, message, parameters, room: room)
    }

    /// DESCRIBE_LEVELS as Linux's iterator runs it (driver.c
    /// `scmi_iterator_run`): ask from the count read so far until a reply
    /// says none remain; each reply's count must fit what it carries.
    mutating func describeAllLevels(domain: UInt32, room: Int = 8 + 128) -> (levels: [UInt32], power: [UInt32], replies: Int)? {
        var levels: [UInt32] = [], power: [UInt32] = []
        var replies = 0
        while true {
            let response = perf(0x4, [domain, UInt32(levels.count)], room: room)
            guard response.status == 0 else { return nil }
            replies += 1
            let returned = Int(response.half(0)), remaining = Int(response.half(2))
            guard response.values.count == 4 + 12 * returned else { return nil }
            for entry in 0..<returned {
                let offset = 4 + 12 * entry
                levels.append(response.word(offset / 4))
                power.append(response.word(offset / 4 + 1))
            }
            if returned == 0 || remaining == 0 { return (levels, power, replies) }
            if replies > 64 { return nil }
        }
    }
}

extension SCMIStatus {
    var code: Int32 { rawValue }
}
