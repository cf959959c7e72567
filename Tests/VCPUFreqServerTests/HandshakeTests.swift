import Foundation
import Testing
import VCPUFreqClient
import VCPUFreqProtocol

/// Every test here starts a real `vcpufreq serve` and changes live threads
/// of this process: one at a time, so timings and thread attributes are the
/// test's own.
@Suite(.serialized, .enabled(if: isRoot, Comment(rawValue: needsRoot)))
struct DaemonTests {}

/// The HELLO magic of docs/protocol.md ("VCPF" in memory order).
let helloMagic: UInt32 = 0x4650_4356

func helloBody(minimum: UInt16, maximum: UInt16, features: UInt32 = 0x1F, name: String = "test vmm") -> [UInt8] {
    RawMessage.body {
        $0.u32(helloMagic)
        $0.u16(minimum)
        $0.u16(maximum)
        $0.u32(features)
        $0.string(name)
    }
}

extension DaemonTests {
    @Suite struct Handshake {
        @Test func helloPicksTheHighestCommonVersion() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let peer = try RawPeer(daemon.socketPath)
            // A client that also speaks future versions gets 1, with its id echoed.
            try peer.send(RawMessage(type: 0x01, id: 4242, body: helloBody(minimum: 1, maximum: 7)).bytes)
            let reply = try peer.receive()
            guard case .message(let header, .helloOK(let ok), let descriptors) = reply else {
                Issue.record("expected HELLO_OK, got \(reply)")
                return
            }
            #expect(header.id == 4242)
            #expect(header.type == 0x81)
            #expect(descriptors == 0)
            #expect(ok.version == 1)
            #expect(ok.features == 0x1F)
            #expect(ok.maximumVCPUs == 1024)
            #expect(ok.daemonVersion.hasPrefix("vcpufreq "))
            // The connection stays usable: STATUS after HELLO is answered.
            try peer.send(.status(.init(flags: 1)))
            guard case .statusOK(0, 1, let json) = try peer.expectReply() else {
                Issue.record("expected one STATUS_OK chunk")
                return
            }
            #expect(try JSONSerialization.jsonObject(with: Data(json)) is [String: Any])
        }

        /// Version ranges without 1: ERROR unsupported_version (code 2),
        /// echoing the id and HELLO's type, then the connection closes.
        @Test(arguments: [(UInt16(2), UInt16(3)), (0, 0), (2, 0xFFFF)])
        func unsupportedVersionIsRefused(minimum: UInt16, maximum: UInt16) throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let peer = try RawPeer(daemon.socketPath)
            try peer.send(RawMessage(type: 0x01, id: 77, body: helloBody(minimum: minimum, maximum: maximum)).bytes)
            let reply = try peer.receive()
            guard case .message(let header, .error(let code, let failedType, let text), _) = reply else {
                Issue.record("expected ERROR, got \(reply)")
                return
            }
            #expect(code == .unsupportedVersion)
            #expect(code.rawValue == 2)
            #expect(failedType == 0x01)
            #expect(header.id == 77)
            #expect(text.contains("\(minimum)") && text.contains("1"))
            #expect(try peer.receive() == .closed)
            // The daemon carries on.
            #expect(try daemon.client().hello.version == 1)
            #expect(daemon.log.contains("unsupportedVersion"))
        }

        /// The client library surfaces the refusal with its code.
        @Test func clientSeesTheRefusal() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let peer = try RawPeer(daemon.socketPath)
            try peer.hello()
            // A second HELLO on the same connection is out of sequence.
            try peer.send(RawMessage(type: 0x01, id: 9, body: helloBody(minimum: 1, maximum: 1)).bytes)
            guard case .message(_, .error(let code, 0x01, _), _) = try peer.receive() else {
                Issue.record("expected ERROR")
                return
            }
            #expect(code == .invalidState)
            #expect(try peer.receive() == .closed)
        }
    }
}
