import Foundation
import Glibc
import SystemPackage
import Testing
import VCPUFreqClient
import VCPUFreqLinux
import VCPUFreqProtocol

/// One bad thing a peer can send, and what docs/protocol.md says it gets.
enum Malformed: String, CaseIterable, Sendable {
    case emptyPacket, truncatedHeader, lengthMismatch, bodyEndsInsideField, oversized, trailingBytes
    case reservedHeaderField, undefinedFlags, unknownType, daemonType, wrongMagic, oneDescriptor, manyDescriptors
    case helloAgain, attachTwice, mapSharedTwice, mapSharedUndefinedFlags, statusUndefinedFlags
    case vcpuCountZero, vcpuCountTooLarge, invalidUTF8Name, emptyName, nameTooLong
    case foreignThread, threadListedTwice, unknownProfile, wrongVCPUCount, duplicateVMName, overBudget
    case accessBeforeAttach, detachBeforeAttach, beforeHello, unsupportedVersion

    /// Whether the test connection has a VM attached when it misbehaves
    /// (then that VM's threads must be restored).
    var attachesFirst: Bool {
        switch self {
        case .foreignThread, .threadListedTwice, .unknownProfile, .wrongVCPUCount, .duplicateVMName, .overBudget,
            .vcpuCountZero, .vcpuCountTooLarge, .invalidUTF8Name, .emptyName, .nameTooLong,
            .accessBeforeAttach, .detachBeforeAttach, .beforeHello, .unsupportedVersion:
            return false
        default:
            return true
        }
    }

    /// Whether the peer says HELLO first (not when HELLO is what goes wrong).
    var saysHelloFirst: Bool { self != .beforeHello && self != .unsupportedVersion }

    /// The ERROR code expected.
    var code: ErrorCode {
        switch self {
        case .emptyPacket, .truncatedHeader, .lengthMismatch, .bodyEndsInsideField, .oversized, .trailingBytes,
            .reservedHeaderField, .undefinedFlags, .wrongMagic, .mapSharedUndefinedFlags, .statusUndefinedFlags,
            .vcpuCountZero, .vcpuCountTooLarge, .invalidUTF8Name, .emptyName, .nameTooLong:
            return .malformed
        case .unknownType, .daemonType: return .unknownType
        case .unsupportedVersion: return .unsupportedVersion
        case .oneDescriptor, .manyDescriptors: return .unexpectedDescriptors
        case .helloAgain, .attachTwice, .mapSharedTwice, .accessBeforeAttach, .detachBeforeAttach, .beforeHello:
            return .invalidState
        case .foreignThread, .threadListedTwice: return .foreignThread
        case .unknownProfile, .wrongVCPUCount: return .unknownProfile
        case .duplicateVMName: return .duplicateVM
        case .overBudget: return .resources
        }
    }
}

/// Everything a case needs besides the connection.
struct MalformedContext {
    var tids: [Int32]
    var foreignPID: Int32
    var bystanderName: String
}

extension Malformed {
    /// The id this case's message carries (echoed in the ERROR when the
    /// daemon could read a header), and its type (echoed as failed_type).
    var id: UInt32 { 0x5150 + UInt32(Malformed.allCases.firstIndex(of: self)!) }

    /// What the ERROR echoes: (id, failed_type), or (0, 0) when no header arrived.
    var echo: (id: UInt32, type: UInt16) {
        switch self {
        case .emptyPacket, .truncatedHeader: return (0, 0)
        case .unknownType: return (id, 0x42)
        case .daemonType: return (id, 0x81)
        case .helloAgain, .wrongMagic, .unsupportedVersion: return (id, 0x01)
        case .attachTwice, .vcpuCountZero, .vcpuCountTooLarge, .invalidUTF8Name, .emptyName, .nameTooLong, .foreignThread,
            .threadListedTwice, .unknownProfile, .wrongVCPUCount, .duplicateVMName, .overBudget:
            return (id, 0x02)
        case .detachBeforeAttach, .trailingBytes: return (id, 0x03)
        case .lengthMismatch, .bodyEndsInsideField, .reservedHeaderField, .undefinedFlags, .oversized, .oneDescriptor,
            .manyDescriptors, .accessBeforeAttach, .beforeHello:
            return (id, 0x04)
        case .mapSharedTwice, .mapSharedUndefinedFlags: return (id, 0x06)
        case .statusUndefinedFlags: return (id, 0x07)
        }
    }

    func attachBody(name: String = "victim", profile: String = "regs", count: UInt32? = nil, tids: [Int32]) -> [UInt8] {
        RawMessage.body {
            $0.string(name)
            $0.string(profile)
            $0.u32(count ?? UInt32(tids.count))
            $0.u32(0)
            for tid in tids { $0.u32(UInt32(bitPattern: tid)) }
        }
    }

    var readBody: [UInt8] { RawMessage.body { $0.u32(0); $0.u32(4); $0.u64(0) } }

    /// Sends the bad message (a MAP_SHARED first for mapSharedTwice).
    func send(on peer: RawPeer, _ context: MalformedContext) throws {
        switch self {
        case .emptyPacket:
            try peer.send([])
        case .truncatedHeader:
            try peer.send(Array(RawMessage(type: 0x04, id: id, body: readBody).bytes.prefix(10)))
        case .lengthMismatch:
            try peer.send(RawMessage(type: 0x04, id: id, length: 40, body: readBody).bytes)
        case .bodyEndsInsideField:
            try peer.send(RawMessage(type: 0x04, id: id, body: Array(readBody.prefix(6))).bytes)
        case .oversized:
            try peer.send(RawMessage(type: 0x04, id: id, body: readBody + Array(repeating: 0xAB, count: 9000)).bytes)
        case .trailingBytes:
            try peer.send(RawMessage(type: 0x03, id: id, body: [0, 0, 0, 0]).bytes)
        case .reservedHeaderField:
            try peer.send(RawMessage(type: 0x04, id: id, reserved: 1, body: readBody).bytes)
        case .undefinedFlags:
            try peer.send(RawMessage(type: 0x04, flags: 0x1, id: id, body: readBody).bytes)
        case .unknownType:
            try peer.send(RawMessage(type: 0x42, id: id, body: readBody).bytes)
        case .daemonType:
            try peer.send(RawMessage(type: 0x81, id: id, body: readBody).bytes)
        case .wrongMagic:
            var body = helloBody(minimum: 1, maximum: 1)
            body[0] ^= 0xFF
            try peer.send(RawMessage(type: 0x01, id: id, body: body).bytes)
        case .oneDescriptor, .manyDescriptors:
            let count = self == .oneDescriptor ? 1 : 3
            let fds = try (0..<count).map { _ in try EventFD() }
            try peer.send(RawMessage(type: 0x04, id: id, body: readBody).bytes, descriptors: fds.map(\.descriptor))
        case .helloAgain:
            try peer.send(RawMessage(type: 0x01, id: id, body: helloBody(minimum: 1, maximum: 1)).bytes)
        case .attachTwice:
            try peer.send(RawMessage(type: 0x02, id: id, body: attachBody(name: "victim2", tids: context.tids)).bytes)
        case .mapSharedTwice:
            try peer.send(.mapShared(.init(flags: 0)))
            guard case .sharedOK = try peer.expectReply() else { throw DaemonError(description: "no SHARED_OK") }
            try peer.send(RawMessage(type: 0x06, id: id, body: RawMessage.body { $0.u32(0) }).bytes)
        case .mapSharedUndefinedFlags:
            try peer.send(RawMessage(type: 0x06, id: id, body: RawMessage.body { $0.u32(0x8) }).bytes)
        case .statusUndefinedFlags:
            try peer.send(RawMessage(type: 0x07, id: id, body: RawMessage.body { $0.u32(0x2) }).bytes)
        case .vcpuCountZero:
            try peer.send(RawMessage(type: 0x02, id: id, body: attachBody(count: 0, tids: [])).bytes)
        case .vcpuCountTooLarge:
            try peer.send(RawMessage(type: 0x02, id: id, body: attachBody(count: 1025, tids: context.tids)).bytes)
        case .invalidUTF8Name:
            var body = attachBody(tids: context.tids)
            body[2] = 0xFF  // first byte of "victim"
            try peer.send(RawMessage(type: 0x02, id: id, body: body).bytes)
        case .emptyName:
            try peer.send(RawMessage(type: 0x02, id: id, body: attachBody(name: "", tids: context.tids)).bytes)
        case .nameTooLong:
            try peer.send(RawMessage(type: 0x02, id: id, body: attachBody(name: String(repeating: "v", count: 65), tids: context.tids)).bytes)
        case .foreignThread:
            try peer.send(RawMessage(type: 0x02, id: id, body: attachBody(tids: [context.tids[0], context.foreignPID])).bytes)
        case .threadListedTwice:
            try peer.send(RawMessage(type: 0x02, id: id, body: attachBody(tids: [context.tids[0], context.tids[0]])).bytes)
        case .unknownProfile:
            try peer.send(RawMessage(type: 0x02, id: id, body: attachBody(profile: "no-such-profile", tids: context.tids)).bytes)
        case .wrongVCPUCount:
            try peer.send(RawMessage(type: 0x02, id: id, body: attachBody(tids: [context.tids[0]])).bytes)
        case .duplicateVMName:
            try peer.send(RawMessage(type: 0x02, id: id, body: attachBody(name: context.bystanderName, tids: context.tids)).bytes)
        case .overBudget:
            // The daemon runs with --max-vcpus 3; the bystander holds 2.
            try peer.send(RawMessage(type: 0x02, id: id, body: attachBody(tids: context.tids)).bytes)
        case .accessBeforeAttach:
            try peer.send(RawMessage(type: 0x04, id: id, body: readBody).bytes)
        case .detachBeforeAttach:
            try peer.send(RawMessage(type: 0x03, id: id).bytes)
        case .beforeHello:
            try peer.send(RawMessage(type: 0x04, id: id, body: readBody).bytes)
        case .unsupportedVersion:
            try peer.send(RawMessage(type: 0x01, id: id, body: helloBody(minimum: 2, maximum: 9)).bytes)
        }
    }
}

extension DaemonTests {
    @Suite struct MalformedInput {
        /// Each bad message gets ERROR with its code (echoing id and type
        /// when a header arrived), only that connection closes, its VM's
        /// threads get their attributes back, and another VM attached on
        /// another connection carries on untouched.
        @Test(arguments: Malformed.allCases)
        func refusedAndIsolated(_ bad: Malformed) throws {
            let daemon = try Daemon(topology: TestTopology.toml(), arguments: ["--max-vcpus", "4"])
            let bystander = try AttachedVM(daemon: daemon, name: "bystander")
            let bystanderShared = try bystander.mapShared()
            try bystanderShared.publish(slot: 0, utilization: 321, flags: [.utilValid, .latencySensitive])
            #expect(eventually { LiveAttributes.slice(bystander.threads.tids[0]) == 400_000 })
            let bystanderPinned = bystander.threads.live

            let threads = try VCPUThreads()
            let sleeper = Process()
            sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
            sleeper.arguments = ["30"]
            try runWithDefaultSignalMask(sleeper)
            defer {
                sleeper.terminate()
                sleeper.waitUntilExit()
            }

            let peer = try RawPeer(daemon.socketPath)
            if bad.saysHelloFirst { try peer.hello() }
            if bad.attachesFirst {
                try peer.attach(vmName: "victim", profile: "regs", threadIDs: threads.tids)
                #expect(threads.live.map(\.cpus) == TestTopology.pinnedCPUs)
            } else if bad == .overBudget {
                // Budget: 4 vCPUs; the bystander has 2, a 2-vCPU VM fits...
                let filler = try AttachedVM(daemon: daemon, name: "filler")
                _ = filler
                // ... but a third does not (the filler goes away after the check).
                try bad.send(on: peer, MalformedContext(tids: threads.tids, foreignPID: sleeper.processIdentifier, bystanderName: "bystander"))
                try expectRefusal(bad, peer: peer)
                #expect(threads.restored)
                return
            }
            try bad.send(on: peer, MalformedContext(tids: threads.tids, foreignPID: sleeper.processIdentifier, bystanderName: "bystander"))
            try expectRefusal(bad, peer: peer)

            // This connection's VM (if any) is detached: threads restored.
            #expect(threads.waitUntilRestored(), "\(threads.live) vs \(threads.originals)")
            #expect(daemon.journalEntries().count == 2, "only the bystander's threads are journaled")

            // The bystander's connection and VM carry on.
            #expect(bystander.threads.live == bystanderPinned)
            let read = try bystander.client.read(vcpu: 1, offset: Offset.upstream(1, Offset.perftblLen))
            #expect(read.value == 3)
            try bystanderShared.publish(slot: 1, utilization: 654, flags: [.utilValid])
            #expect(eventually { bystanderShared.guest.readHostArea(slot: 1)?.utilMin == 654 })
            let status = try daemon.client().status()
            #expect(status.vms.map(\.name) == ["bystander"])
            #expect(status.daemon.connections == 2)  // the bystander and this status client
            #expect(daemon.log.contains("protocol error; closing connection"))
        }

        private func expectRefusal(_ bad: Malformed, peer: RawPeer, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let reply = try peer.receive()
            guard case .message(let header, .error(let code, let failedType, let text), let descriptors) = reply else {
                Issue.record("\(bad): expected ERROR \(bad.code), got \(reply)", sourceLocation: sourceLocation)
                return
            }
            #expect(code == bad.code, "\(bad): \(text)", sourceLocation: sourceLocation)
            #expect(header.id == bad.echo.id, "\(bad)", sourceLocation: sourceLocation)
            #expect(failedType == bad.echo.type, "\(bad)", sourceLocation: sourceLocation)
            #expect(descriptors == 0, sourceLocation: sourceLocation)
            #expect(!text.isEmpty, sourceLocation: sourceLocation)
            #expect(try peer.receive() == .closed, "\(bad): the connection must close", sourceLocation: sourceLocation)
        }
    }
}
