// The daemon's handling of what VMMs send, end to end in this process: a
// real `Server` (dry run, no BPF) accepts two VMM connections on its real
// socket, and every step sends one packet — a well-formed message, one
// broken on purpose, raw bytes, an empty or oversized packet, one with a
// file descriptor — or stores into the shared page the daemon mapped, or
// advances time; the daemon's receive path (framing, decode, the protocol
// state machine, attach, the device, the policy, the shared page) runs as
// its event loop would run it, on a virtual clock.
//
// Asserted: every reply decodes and echoes its request's id; the reply (or
// its absence) is the one docs/protocol.md gives for the connection's state;
// every rejection is an ERROR with a reason, after which the daemon closes
// that connection only (the other keeps its VM); ATTACH succeeds exactly
// when the profile, the vCPU count, the name and every TID (a thread of the
// peer, named once, in no other VM) allow it; the device counts every
// forwarded access; every action on a thread (the dry run's record) names a
// thread of the VM it was attached to, every hint stays within the VM's cap,
// each thread is captured and restored exactly once, and the kernel still
// reports every thread's original nice and affinity; when the peers are
// gone no VM, thread or connection is left.
import Foundation
import Glibc
import Logging
import SystemPackage
@testable import VCPUFreqClient
import VCPUFreqConfig
@testable import VCPUFreqCore
@testable import VCPUFreqLinux
import VCPUFreqProtocol
@testable import VCPUFreqServer

enum DaemonTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let harness = Harness.shared else { return }
        var input = FuzzInput(bytes)
        var session = Session(harness: harness)
        var steps = 0
        while !input.isExhausted, steps < 96 {
            steps += 1
            session.step(&input)
        }
        session.finish()
    }

    /// The JSON a dry-run daemon answers STATUS with after a VM attached
    /// and its guest probed the device (a seed of the status target).
    static func statusOfProbedVM() -> [UInt8]? {
        guard let seed = seeds().first(where: { $0.name == "probe-status" }) else { return nil }
        Harness.lastStatusJSON = nil
        seed.bytes.withUnsafeBytes { run($0) }
        return Harness.lastStatusJSON
    }

    // MARK: The daemon and the VMM's threads

    /// One daemon and one pool of "vCPU threads" for the whole process.
    final class Harness {
        nonisolated(unsafe) static let shared: Harness? = {
            do { return try Harness() } catch {
                FuzzInvariant.report("cannot start the daemon: \(error)", #fileID, #line)
                return nil
            }
        }()
        nonisolated(unsafe) static var lastStatusJSON: [UInt8]?

        let server: Server
        let topology: Topology
        let models: [String: VMModel]
        /// Threads of this process a VMM may name (two VMs' worth and more).
        let pool: [ScratchThread]
        /// TIDs an ATTACH may carry: the pool, this thread, init, nonsense.
        let candidates: [Int32]
        /// What the kernel reports for each pool thread before any daemon.
        let originals: [Int32: KernelView]
        let socketPath: String
        let recordPath: String
        var clock: UInt64

        init() throws {
            var topology = FuzzFixtures.topologies[0]
            // A second, different profile: 2 vCPUs, max-only, never kicked, capped, not pinned.
            topology.vms.append(VMProfile(
                name: "small", vcpuCount: 2, clusters: ["big", "little"], pin: false, utilCap: 512, tableMode: .maxOnly,
                policy: PolicySettings(kickMode: .never)))
            precondition(!topology.check().hasErrors, "daemon topology: \(topology.check())")
            self.topology = topology
            models = try Dictionary(uniqueKeysWithValues: topology.vms.map { ($0.name, try topology.model(forVM: $0.name)) })
            let directory = "/tmp/vcpufreq-fuzz-daemon-\(getpid())"
            mkdir(directory, 0o700)
            socketPath = directory + "/daemon.sock"
            recordPath = directory + "/record.jsonl"
            unlink(socketPath)
            unlink(recordPath)
            Harness.directory = directory
            atexit {
                if let directory = Harness.directory {
                    unlink(directory + "/daemon.sock")
                    unlink(directory + "/record.jsonl")
                    rmdir(directory + "/state")
                    rmdir(directory)
                }
            }
            var configuration = ServerConfiguration(
                topology: topology, socketPath: socketPath, dryRun: true, recordPath: recordPath,
                stateDirectory: directory + "/state", sysfsRoot: directory + "/no-sysfs")
            configuration.bpf = .init(enabled: false, utilHintPin: .none)
            server = try Server(configuration: configuration, logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() })
            pool = try (0..<18).map { _ in try ScratchThread() }
            candidates = pool.map(\.tid) + [getpid(), 1, Int32.max]
            originals = Dictionary(uniqueKeysWithValues: pool.map { ($0.tid, KernelView.of($0.tid)) })
            clock = MonotonicClock.nowNanoseconds()
        }

        nonisolated(unsafe) static var directory: String?
    }

    /// A thread's scheduling as the kernel reports it (getpriority(2),
    /// sched_getaffinity(2)), read without the daemon's code.
    struct KernelView: Equatable {
        var nice: Int32
        var cpus: [UInt8]

        static func of(_ tid: Int32) -> KernelView {
            errno = 0
            let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(tid))
            var mask = [UInt8](repeating: 0, count: 128)
            let result = mask.withUnsafeMutableBytes { getAffinity?(tid, $0.count, $0.baseAddress!) ?? -1 }
            return KernelView(nice: nice, cpus: result == 0 ? mask : [])
        }

        private typealias GetAffinity = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32
        private static let getAffinity: GetAffinity? =
            dlsym(nil, "sched_getaffinity").map { unsafeBitCast($0, to: GetAffinity.self) }
    }

    /// Whether `tid` is a thread of this process, as /proc says.
    static func isOurThread(_ tid: Int32) -> Bool {
        tid > 0 && access("/proc/self/task/\(tid)", F_OK) == 0
    }

    // MARK: One input

    /// A VM a peer attached (as the peer knows it).
    struct AttachedVM {
        var id: UInt32
        var name: String
        var model: VMModel
        var tids: [Int32]
        /// READ/WRITE messages sent for it: what the device must have counted.
        var accesses: UInt64 = 0
        var mapped: Bool = false
    }

    enum PeerState {
        case awaitingHello, ready, attached, closed
    }

    /// One VMM connection, client side.
    final class Peer {
        var socket: SeqPacketConnection?
        var serverID: UInt32 = 0
        var state = PeerState.awaitingHello
        var vm: AttachedVM?
        var nextID: UInt32 = 1
        /// The shared memory the daemon sent (unmapped at close).
        var mapping: (base: UnsafeMutableRawPointer, size: Int, pageSize: Int)?

        func close() {
            if let mapping { munmap(mapping.base, mapping.size) }
            mapping = nil
            socket = nil
            state = .closed
            vm = nil
        }
    }

    /// What the reply to one packet must be.
    enum Expectation {
        case error(Set<ErrorCode>, id: UInt32, type: UInt16)
        case none
        case hello(features: UInt32)
        case attach(ClientMessage.Attach, failures: Set<ErrorCode>, id: UInt32)
        case detach(id: UInt32)
        case read(id: UInt32)
        case write(id: UInt32)
        /// A WRITE without SYNC: no reply, one access.
        case postedWrite
        case mapShared(flags: UInt32, id: UInt32)
        case status(allVMs: Bool, id: UInt32)
    }

    struct Reply {
        var header: MessageHeader
        var message: DaemonMessage
        var descriptors: [OwnedDescriptor]
    }

    static let vmNames = ["vm0", "vm1", "", String(repeating: "n", count: 65), "a\u{0}b", "vm0"]

    struct Session {
        let harness: Harness
        var peers = [Peer(), Peer()]
        /// Every (vm, vcpu, tid) an ATTACH_OK gave, with the VM's cap and pin set, and how often.
        var attached: [String: Int] = [:]
        /// Every ATTACH_OK in order: the record's captures are matched to them.
        var attachLog: [(vm: String, tids: [Int32], model: VMModel)] = []
        var receiveBuffer = [UInt8](repeating: 0, count: Wire.maximumDaemonMessage + 1)

        init(harness: Harness) {
            self.harness = harness
            truncate(harness.recordPath, 0)
        }

        var server: Server { harness.server }

        static func key(_ vm: String, _ vcpu: Int, _ tid: Int32) -> String { "\(vm)|\(vcpu)|\(tid)" }

        // MARK: Steps

        mutating func step(_ input: inout FuzzInput) {
            let peer = peers[Int(input.byte() & 1)]
            if peer.socket == nil, peer.state != .closed || input.byte() < 64 { open(peer) }
            guard peer.socket != nil else { return }
            let id = peer.nextID
            peer.nextID &+= 1
            switch input.byte() % 12 {
            case 0: send(.hello(.init(
                minimumVersion: input.bool() ? 1 : input.integer(), maximumVersion: input.bool() ? 1 : input.integer(),
                features: input.integer(), clientName: input.text(maximum: 40))), id: id, peer: peer)
            case 1: send(.attach(attachMessage(&input, peer: peer)), id: id, peer: peer)
            case 2: send(.detach, id: id, peer: peer)
            case 3, 4, 5:
                let model = peer.vm?.model ?? harness.models["android"]!
                switch DeviceTarget.operation(&input, vm: model) {
                case .read(let vcpu, let offset, let width):
                    send(.read(.init(vcpu: UInt32(truncatingIfNeeded: vcpu), width: UInt32(width), offset: offset)), id: id, peer: peer)
                case .write(let vcpu, let offset, let value, let width):
                    send(.write(.init(vcpu: UInt32(truncatingIfNeeded: vcpu), width: UInt32(width), offset: offset, value: value,
                                      sync: input.bool())), id: id, peer: peer)
                case .wait(let microseconds):
                    advance(microseconds: microseconds % 10_000_000)
                }
            case 6: send(.mapShared(.init(flags: input.bool() ? UInt32(input.byte() & 3) : input.integer())), id: id, peer: peer)
            case 7: send(.status(.init(flags: input.bool() ? UInt32(input.byte() & 1) : input.integer())), id: id, peer: peer)
            case 8: sendPacket(Array(input.chunk()), peer: peer)
            case 9: sendMutated(&input, id: id, peer: peer)
            case 10: special(&input, peer: peer)
            default: guestStore(&input, peer: peer)
            }
            checkDevice()
        }

        func attachMessage(_ input: inout FuzzInput, peer: Peer) -> ClientMessage.Attach {
            let profiles = harness.topology.vms.map(\.name) + ["", "nope"]
            let profile = input.element(of: profiles)
            let count = (harness.topology.profile(named: profile.isEmpty ? nil : profile)?.vcpuCount ?? 8)
            let selector = input.byte()
            let length = selector < 192 ? count : selector < 224 ? count + 1 : max(0, count - 1)
            // Mostly the pool in order (as a VMM lists its vCPU threads), from an offset.
            let start = input.index(below: harness.pool.count)
            let tids = (0..<length).map { index -> Int32 in
                let choice = input.byte()
                if choice < 224 { return harness.pool[(start + index) % harness.pool.count].tid }
                if choice < 248 { return input.element(of: harness.candidates) }
                return input.integer()
            }
            return .init(vmName: input.element(of: vmNames), profile: profile, threadIDs: tids)
        }

        mutating func sendMutated(_ input: inout FuzzInput, id: UInt32, peer: Peer) {
            let message = ProtocolTarget.clientMessage(&input)
            var bytes = ProtocolTarget.encoded(message, id: id)
            switch input.byte() % 4 {
            case 0 where !bytes.isEmpty: bytes[input.index(below: bytes.count)] ^= input.byte() | 1
            case 1: bytes.removeLast(min(bytes.count, 1 + input.index(below: 8)))
            case 2: bytes += Array(input.chunk(maximum: 16))
            default:
                let length = UInt32(bytes.count) &+ UInt32(truncatingIfNeeded: Int(input.integer(Int8.self)))
                withUnsafeBytes(of: length.littleEndian) { for index in 0..<4 { bytes[4 + index] = $0[index] } }
            }
            sendPacket(bytes, peer: peer)
        }

        mutating func special(_ input: inout FuzzInput, peer: Peer) {
            switch input.byte() % 5 {
            case 0: sendPacket([], peer: peer)
            case 1:
                // Longer than any client message: refused, not cut.
                let extra = input.index(below: 64)
                var bytes = ProtocolTarget.encoded(.read(.init(vcpu: 0, width: 4, offset: 0)), id: peer.nextID)
                bytes += [UInt8](repeating: 0, count: Wire.maximumClientMessage + 1 + extra - bytes.count)
                sendPacket(bytes, peer: peer)
            case 2:
                let message = ProtocolTarget.clientMessage(&input)
                sendPacket(ProtocolTarget.encoded(message, id: peer.nextID), peer: peer, descriptors: 1 + input.index(below: 2))
            case 3:
                // The VMM goes away: the daemon must notice and restore.
                hangUp(peer)
            default:
                advance(microseconds: UInt64(input.integer(UInt32.self)))
            }
        }

        /// A guest store into the shared page the daemon handed out: a
        /// well-formed publish, or one word anywhere in the page.
        mutating func guestStore(_ input: inout FuzzInput, peer: Peer) {
            guard let mapping = peer.mapping, let vm = peer.vm else { return }
            let memory = AtomicSharedPageMemory(base: mapping.base, byteCount: mapping.pageSize)
            if input.bool() {
                let guest = SharedPageGuest(memory: memory, vcpuCount: vm.model.vcpuCount)
                _ = guest.publish(
                    slot: input.index(below: vm.model.vcpuCount), utilization: UInt32(input.integer(UInt16.self)),
                    performanceKHz: input.integer(), flags: .init(rawValue: UInt32(input.byte() & 0x1F)))
            } else {
                memory.store(Int(input.integer(UInt16.self)) % mapping.pageSize & ~3, input.integer())
            }
        }

        mutating func advance(microseconds: UInt64) {
            harness.clock &+= microseconds * 1000
            server.runTimers(now: harness.clock)
        }

        // MARK: Connections

        mutating func open(_ peer: Peer) {
            let fd = system_seqpacket_socket(true)
            guard fd >= 0 else { return invariant(false, "socket: errno \(errno)") }
            let socket = SeqPacketConnection(adopting: fd, nonblocking: true)
            guard harness.socketPath.withCString({ system_connect(fd, $0) }) == 0 else {
                return invariant(false, "connect to the daemon: errno \(errno)")
            }
            let before = Set(server.connections.keys)
            server.acceptConnections(now: harness.clock)
            let new = Set(server.connections.keys).subtracting(before)
            invariant(new.count == 1, "the daemon accepted \(new.count) connections for one connect")
            guard let serverID = new.first else { return }
            peer.socket = socket
            peer.serverID = serverID
            peer.state = .awaitingHello
            peer.vm = nil
        }

        /// The daemon reads what the peer sent, as its loop does when the
        /// socket is readable.
        func receive(_ peer: Peer) {
            guard let connection = server.connections[peer.serverID] else { return }
            server.receive(connection, now: harness.clock)
        }

        /// The peer hangs up and the daemon reads the end of the stream, as
        /// its loop does once poll says the socket is readable. A packet is
        /// on the daemon's end when send returns, an end of stream only when
        /// the last copy of the peer's descriptor is closed: a process
        /// spawned meanwhile by another thread (the test suite runs programs
        /// side by side) holds a copy until its exec, so the wait is
        /// bounded, not skipped (found flaky in the suite, not in libFuzzer).
        func hangUp(_ peer: Peer) {
            peer.close()
            guard let connection = server.connections[peer.serverID] else { return }
            var entry = pollfd(fd: connection.socket.descriptor.rawValue, events: Int16(POLLIN), revents: 0)
            _ = poll(&entry, 1, 2000)
            server.receive(connection, now: harness.clock)
        }

        mutating func send(_ message: ClientMessage, id: UInt32, peer: Peer) {
            sendPacket(ProtocolTarget.encoded(message, id: id), peer: peer)
        }

        mutating func sendPacket(_ bytes: [UInt8], peer: Peer, descriptors: Int = 0) {
            guard let socket = peer.socket else { return }
            let expectation = expect(bytes, descriptors: descriptors, peer: peer)
            var fds: [OwnedDescriptor] = []
            for _ in 0..<descriptors {
                if let bell = try? EventFD(nonblocking: true) { fds.append(OwnedDescriptor(taking: FileDescriptor(rawValue: dup(bell.descriptor.rawValue)))) }
            }
            do throws(Errno) {
                try socket.send(bytes, descriptors: fds.map(\.rawDescriptor))
            } catch {
                // The daemon closed this connection before (an ERROR): nothing more to see.
                invariant(peer.state == .closed || error == .brokenPipe || error == .connectionReset, "send: \(error)")
                return
            }
            receive(peer)
            let (replies, closed) = drain(peer)
            check(replies, closed: closed, against: expectation, peer: peer, sent: bytes)
        }

        /// Every reply waiting on the peer's socket, and whether the daemon closed it.
        mutating func drain(_ peer: Peer) -> ([Reply], Bool) {
            guard let socket = peer.socket else { return ([], true) }
            var replies: [Reply] = []
            while true {
                let outcome = receiveBuffer.withUnsafeMutableBytes { buffer in
                    Result { () throws(Errno) in try socket.receive(into: buffer, maximumDescriptors: 253) }
                }
                switch outcome {
                case .failure(let error):
                    invariant(error == .connectionReset, "receive from the daemon: \(error)")
                    return (replies, true)
                case .success(.wouldBlock):
                    return (replies, false)
                case .success(.endOfStream):
                    return (replies, true)
                case .success(.dataTruncated), .success(.descriptorsTruncated):
                    invariant(false, "the daemon sent a message larger than \(Wire.maximumDaemonMessage) bytes or with too many descriptors")
                    return (replies, true)
                case .success(.message(let count, let descriptors)):
                    let decoded = receiveBuffer.withUnsafeBytes { raw in
                        ProtocolTarget.decodeDaemon(UnsafeRawBufferPointer(rebasing: raw[0..<count]))
                    }
                    switch decoded {
                    case .success(let (header, message)):
                        invariant(descriptors.count == message.descriptorCount, "\(message.type) came with \(descriptors.count) descriptors")
                        replies.append(Reply(header: header, message: message, descriptors: descriptors))
                    case .failure(let violation):
                        invariant(false, "the daemon sent a message its own client cannot decode: \(violation)")
                    }
                }
            }
        }

        // MARK: What the reply must be

        /// docs/protocol.md: the daemon's answer to `bytes` in the peer's state.
        func expect(_ bytes: [UInt8], descriptors: Int, peer: Peer) -> Expectation {
            let echo: (id: UInt32, type: UInt16) = bytes.count >= 12
                ? (UInt32(bytes[8]) | UInt32(bytes[9]) << 8 | UInt32(bytes[10]) << 16 | UInt32(bytes[11]) << 24,
                   UInt16(bytes[0]) | UInt16(bytes[1]) << 8)
                : (0, 0)
            if bytes.isEmpty && descriptors == 0 { return .error([.malformed], id: 0, type: 0) }
            if descriptors > 0 { return .error([.unexpectedDescriptors], id: echo.id, type: echo.type) }
            if bytes.count > Wire.maximumClientMessage {
                let truncated = Array(bytes.prefix(Wire.maximumClientMessage + 1))
                let id = UInt32(truncated[8]) | UInt32(truncated[9]) << 8 | UInt32(truncated[10]) << 16 | UInt32(truncated[11]) << 24
                return .error([.malformed], id: id, type: UInt16(truncated[0]) | UInt16(truncated[1]) << 8)
            }
            let decoded = bytes.withUnsafeBytes { ProtocolTarget.decodeClient($0) }
            guard case .success(let (header, message)) = decoded else {
                if case .failure(let violation) = decoded { return .error([violation.code], id: echo.id, type: echo.type) }
                return .none
            }
            let id = header.id
            func invalidState() -> Expectation { .error([.invalidState], id: id, type: header.type) }
            switch (message, peer.state) {
            case (_, .closed): return .none
            case (.hello(let hello), .awaitingHello):
                guard hello.minimumVersion <= Wire.version, hello.maximumVersion >= Wire.version else {
                    return .error([.unsupportedVersion], id: id, type: header.type)
                }
                return .hello(features: hello.features & SharedPageABI.Feature.all.rawValue)
            case (.hello, _), (_, .awaitingHello): return invalidState()
            case (.attach(let attach), .ready): return .attach(attach, failures: attachFailures(attach, peer: peer), id: id)
            case (.attach, .attached): return invalidState()
            case (.detach, .attached): return .detach(id: id)
            case (.read, .attached): return .read(id: id)
            case (.write(let write), .attached): return write.sync ? .write(id: id) : .postedWrite
            case (.mapShared(let request), .attached):
                return peer.vm?.mapped == true ? invalidState() : .mapShared(flags: request.flags, id: id)
            case (.status(let request), _): return .status(allVMs: request.flags & 1 != 0, id: id)
            case (.detach, _), (.read, _), (.write, _), (.mapShared, _): return invalidState()
            }
        }

        /// Why an ATTACH in the ready state must fail (empty: it must succeed).
        func attachFailures(_ attach: ClientMessage.Attach, peer: Peer) -> Set<ErrorCode> {
            var failures = Set<ErrorCode>()
            let profile = harness.topology.profile(named: attach.profile.isEmpty ? nil : attach.profile)
            if profile == nil || profile?.vcpuCount != attach.threadIDs.count { failures.insert(.unknownProfile) }
            let others = peers.filter { $0 !== peer }.compactMap(\.vm)
            if others.contains(where: { $0.name == attach.vmName }) { failures.insert(.duplicateVM) }
            let taken = Set(others.flatMap(\.tids))
            if Set(attach.threadIDs).count != attach.threadIDs.count
                || attach.threadIDs.contains(where: { !isOurThread($0) || taken.contains($0) })
            {
                failures.insert(.foreignThread)
            }
            return failures
        }

        mutating func check(_ replies: [Reply], closed: Bool, against expectation: Expectation, peer: Peer, sent: [UInt8]) {
            func only(_ body: (Reply) -> Void) {
                invariant(replies.count == 1 && !closed, "\(expectation): \(replies.count) replies\(closed ? ", closed" : "") to \(sent)")
                if let reply = replies.first { body(reply) }
            }
            func echoes(_ reply: Reply, _ id: UInt32) {
                invariant(reply.header.id == id, "\(reply.message.type) answers id \(reply.header.id), not \(id)")
            }
            switch expectation {
            case .none, .postedWrite:
                invariant(replies.isEmpty && !closed, "no reply expected to \(sent), got \(replies.map(\.message))\(closed ? ", closed" : "")")
                if case .postedWrite = expectation { peer.vm?.accesses += 1 }
            case .error(let codes, let id, let type):
                invariant(replies.count == 1 && closed, "\(replies.count) replies (closed: \(closed)) to \(sent); expected ERROR \(codes)")
                if let reply = replies.first {
                    guard case .error(let code, let failedType, let text) = reply.message else {
                        return invariant(false, "\(reply.message) instead of ERROR \(codes) for \(sent)")
                    }
                    invariant(codes.contains(code) && reply.header.id == id && failedType == type && !text.isEmpty,
                              "ERROR \(code) (id \(reply.header.id), type \(failedType)) \"\(text)\", expected \(codes) (id \(id), type \(type))")
                }
                closePeer(peer)
            case .hello(let features):
                only { reply in
                    guard case .helloOK(let ok) = reply.message else { return invariant(false, "\(reply.message) instead of HELLO_OK") }
                    invariant(ok.version == Wire.version && ok.features == features, "HELLO_OK \(ok), granted features should be \(features)")
                }
                peer.state = .ready
            case .attach(let attach, let failures, let id):
                guard failures.isEmpty else {
                    return check(replies, closed: closed, against: .error(failures, id: id, type: MessageType.attach.rawValue), peer: peer, sent: sent)
                }
                only { reply in
                    echoes(reply, id)
                    guard case .attachOK(let ok) = reply.message else {
                        return invariant(false, "\(attach) should attach; the daemon answered \(reply.message)")
                    }
                    let profile = harness.topology.profile(named: attach.profile.isEmpty ? nil : attach.profile)!
                    let model = harness.models[profile.name]!
                    invariant(ok.vcpuCount == UInt32(attach.threadIDs.count) && ok.profile == profile.name
                              && ok.baseAddress == model.addressMap.base && server.sessions[ok.vmID]?.name == attach.vmName,
                              "ATTACH_OK \(ok) for \(attach)")
                    peer.vm = AttachedVM(id: ok.vmID, name: attach.vmName, model: model, tids: attach.threadIDs)
                    peer.state = .attached
                    for (vcpu, tid) in attach.threadIDs.enumerated() { attached[Session.key(attach.vmName, vcpu, tid), default: 0] += 1 }
                    attachLog.append((attach.vmName, attach.threadIDs, model))
                }
                if case .error = replies.first?.message { closePeer(peer) }
            case .detach(let id):
                only { reply in
                    echoes(reply, id)
                    guard case .detachOK(let restored) = reply.message else { return invariant(false, "\(reply.message) instead of DETACH_OK") }
                    invariant(Int(restored) == peer.vm?.tids.count, "DETACH_OK restored \(restored) of \(peer.vm?.tids.count ?? 0) threads")
                }
                if let vm = peer.vm { invariant(server.sessions[vm.id] == nil, "VM \(vm.name) still attached after DETACH_OK") }
                peer.vm = nil
                peer.state = .ready
            case .read(let id):
                peer.vm?.accesses += 1
                only { reply in
                    echoes(reply, id)
                    guard case .readOK(let value, let invalid) = reply.message else { return invariant(false, "\(reply.message) instead of READ_OK") }
                    invariant(invalid <= UInt32(InvalidAccess.allCases.count), "READ_OK invalid code \(invalid)")
                    if let kind = InvalidAccess(rawValue: Int(invalid) - 1), DeviceTarget.refusals.contains(kind) {
                        invariant(value == 0, "a refused read (\(kind)) answered \(value)")
                    }
                }
            case .write(let id):
                peer.vm?.accesses += 1
                only { reply in
                    echoes(reply, id)
                    guard case .writeOK(let invalid) = reply.message else { return invariant(false, "\(reply.message) instead of WRITE_OK") }
                    invariant(invalid <= UInt32(InvalidAccess.allCases.count), "WRITE_OK invalid code \(invalid)")
                }
            case .mapShared(let flags, let id):
                checkShared(replies, closed: closed, flags: flags, id: id, peer: peer)
            case .status(let allVMs, let id):
                checkStatus(replies, closed: closed, allVMs: allVMs, id: id, peer: peer)
            }
        }

        mutating func checkShared(_ replies: [Reply], closed: Bool, flags: UInt32, id: UInt32, peer: Peer) {
            guard let vm = peer.vm else { return }
            let count = vm.model.vcpuCount
            let wantsDoorbells = flags & ClientMessage.MapSharedRequest.doorbells != 0
            let messages = wantsDoorbells ? (count + Wire.doorbellsPerMessage - 1) / Wire.doorbellsPerMessage : 0
            invariant(replies.count == 1 + messages && !closed, "MAP_SHARED answered with \(replies.map(\.message.type))")
            guard let first = replies.first, case .sharedOK(let layout) = first.message else {
                return invariant(false, "\(replies.first.map { "\($0.message)" } ?? "nothing") instead of SHARED_OK")
            }
            echoes(first, id)
            let mirror = flags & ClientMessage.MapSharedRequest.mirror != 0
            invariant(layout.pageSize == UInt64(SharedPageABI.regionSize(vcpuCount: count))
                      && layout.pageDeviceOffset == DeviceAddressMap.sharedPageOffset
                      && layout.mirrorSize == (mirror ? vm.model.addressMap.upstreamSize : 0)
                      && layout.doorbellCount == (wantsDoorbells ? UInt32(count) : 0)
                      && layout.doorbellMessages == UInt32(messages)
                      && layout.memfdSize >= layout.pageSize + layout.mirrorSize, "SHARED_OK layout \(layout)")
            var bells = 0
            for reply in replies.dropFirst() {
                guard case .doorbells(let first, let number) = reply.message else { return invariant(false, "\(reply.message) instead of DOORBELLS") }
                invariant(first == UInt32(bells), "DOORBELLS from \(first), expected \(bells)")
                bells += Int(number)
            }
            invariant(bells == Int(layout.doorbellCount), "\(bells) doorbells sent, \(layout.doorbellCount) announced")
            peer.vm?.mapped = true
            guard let memfd = first.descriptors.first?.rawDescriptor, layout.memfdSize <= 1 << 30 else { return }
            let size = Int(layout.memfdSize)
            let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd.rawValue, 0)
            invariant(base != MAP_FAILED && base != nil, "cannot map the daemon's memfd of \(size) bytes")
            guard let base, base != MAP_FAILED else { return }
            peer.mapping = (base, size, Int(layout.pageSize))
            let memory = AtomicSharedPageMemory(base: base, byteCount: Int(layout.pageSize))
            invariant(memory.load(SharedPageABI.Header.magic) == SharedPageABI.magic
                      && memory.load(SharedPageABI.Header.vcpuCount) == UInt32(count), "the shared page header")
        }

        mutating func checkStatus(_ replies: [Reply], closed: Bool, allVMs: Bool, id: UInt32, peer: Peer) {
            invariant(!replies.isEmpty && !closed, "STATUS answered with \(replies.count) messages\(closed ? ", closed" : "")")
            var json: [UInt8] = []
            for (index, reply) in replies.enumerated() {
                echoes(reply, id)
                guard case .statusOK(let chunk, let chunks, let bytes) = reply.message else {
                    return invariant(false, "\(reply.message) instead of STATUS_OK")
                }
                invariant(chunk == UInt32(index) && chunks == UInt32(replies.count), "STATUS_OK chunk \(chunk) of \(chunks), message \(index) of \(replies.count)")
                json += bytes
            }
            Harness.lastStatusJSON = json
            let document: StatusDocument
            do throws(ClientError) {
                document = try VCPUFreqClient.decodeStatus(json)
            } catch {
                return invariant(false, "the daemon's status does not decode: \(error)")
            }
            let expected = allVMs ? server.sessions.count : (peer.vm == nil ? 0 : 1)
            invariant(document.vms.count == expected, "STATUS lists \(document.vms.count) VMs, \(expected) expected")
            for vm in document.vms {
                guard let ours = peers.compactMap(\.vm).first(where: { $0.id == vm.id }) else {
                    return invariant(false, "STATUS lists VM \(vm.id) (\(vm.name)) no peer attached")
                }
                invariant(vm.name == ours.name && vm.vcpus.map(\.tid) == ours.tids, "STATUS of VM \(vm.name): \(vm.vcpus.map(\.tid))")
                invariant(vm.counters.accesses == ours.accesses, "STATUS counts \(vm.counters.accesses) accesses of VM \(vm.name), \(ours.accesses) were sent")
            }
        }

        func echoes(_ reply: Reply, _ id: UInt32) {
            invariant(reply.header.id == id, "\(reply.message.type) answers id \(reply.header.id), not \(id)")
        }

        /// The daemon closed the peer's connection: its VM is gone from the
        /// daemon, and the other peer's is not.
        mutating func closePeer(_ peer: Peer) {
            invariant(server.connections[peer.serverID] == nil, "the daemon kept a connection it sent ERROR on")
            if let vm = peer.vm { invariant(server.sessions[vm.id] == nil, "VM \(vm.name) still attached after ERROR") }
            for other in peers where other !== peer {
                if let vm = other.vm { invariant(server.sessions[vm.id] != nil, "an ERROR on one connection detached the other's VM") }
                if other.socket != nil { invariant(server.connections[other.serverID] != nil, "an ERROR on one connection closed the other") }
            }
            peer.close()
        }

        /// The device of every attached VM counted exactly the accesses sent for it.
        func checkDevice() {
            for vm in peers.compactMap(\.vm) {
                guard let session = server.sessions[vm.id] else { return invariant(false, "VM \(vm.name) vanished from the daemon") }
                invariant(session.device.counters.accesses == vm.accesses,
                          "the device of \(vm.name) counted \(session.device.counters.accesses) accesses, \(vm.accesses) were sent")
                invariant(session.policy.rejectedRequests == 0, "the policy of \(vm.name) got a request for a vCPU it lacks")
            }
        }

        // MARK: The end

        mutating func finish() {
            for peer in peers where peer.socket != nil {
                hangUp(peer)
            }
            invariant(server.connections.isEmpty && server.sessions.isEmpty && server.attachedTIDs.isEmpty && server.attachedVCPUs == 0,
                      "after every peer left: \(server.connections.count) connections, \(server.sessions.count) VMs, \(server.attachedTIDs.count) threads, \(server.attachedVCPUs) vCPUs")
            checkRecord()
            // The threads this input attached (the others no ATTACH named).
            let touched = Set(attached.keys.compactMap { Int32($0.split(separator: "|").last ?? "") })
            for tid in touched {
                guard let original = harness.originals[tid] else { continue }
                invariant(KernelView.of(tid) == original, "thread \(tid) is not as it was (a dry run changes no thread)")
            }
        }

        struct Action: Decodable {
            var action: String
            var tid: Int32
            var vm: String
            var vcpu: Int
            var util_min: Int
            var util_max: Int
            var cpus: String?
        }

        /// The dry run's record: what the daemon did (would do) to threads.
        func checkRecord() {
            // Read with the topology file's reader (Glibc): Foundation's
            // FileManager.contents(atPath:) leaks an empty file's buffer.
            guard let text = try? TopologyFile.readText(path: harness.recordPath) else {
                return invariant(attached.isEmpty, "no record of the attached threads")
            }
            var captured: [String: Int] = [:], restored: [String: Int] = [:]
            // The model each recorded thread is under now: a capture of
            // vCPU 0 starts the next attach of that name in `attachLog`.
            var pending = attachLog
            var modelOf: [String: VMModel] = [:]
            let decoder = JSONDecoder()
            for line in Array(text.utf8).split(separator: UInt8(ascii: "\n")) {
                guard let action = try? decoder.decode(Action.self, from: Data(line)) else {
                    invariant(false, "record line \(String(decoding: line, as: UTF8.self)) is not JSON")
                    continue
                }
                let key = Session.key(action.vm, action.vcpu, action.tid)
                invariant(attached[key] != nil, "\(action.action) of thread \(action.tid) as vCPU \(action.vcpu) of \(action.vm): no such VM thread was attached")
                switch action.action {
                case "capture":
                    captured[key, default: 0] += 1
                    if action.vcpu == 0, let index = pending.firstIndex(where: { $0.vm == action.vm && $0.tids.first == action.tid }) {
                        let attach = pending.remove(at: index)
                        for (vcpu, tid) in attach.tids.enumerated() { modelOf[Session.key(attach.vm, vcpu, tid)] = attach.model }
                    }
                case "restore":
                    restored[key, default: 0] += 1
                    invariant(restored[key]! <= captured[key, default: 0], "thread \(action.tid) restored before it was captured")
                case "apply":
                    guard let model = modelOf[key] else {
                        invariant(false, "apply to thread \(action.tid) of \(action.vm) before its capture")
                        continue
                    }
                    invariant(action.util_min <= action.util_max && action.util_max <= model.utilCap,
                              "hint util_min \(action.util_min) util_max \(action.util_max) on \(action.vm) (cap \(model.utilCap))")
                    let pin = model.pin ? model.vcpus[action.vcpu].hostCPUs.description : nil
                    invariant(action.cpus == nil || action.cpus == pin,
                              "thread \(action.tid) of \(action.vm) pinned to \(action.cpus ?? "-"), its vCPU's CPUs are \(pin ?? "not pinned")")
                default:
                    invariant(false, "record action \(action.action)")
                }
            }
            invariant(captured == attached && restored == attached, "captures \(captured), restores \(restored), attaches \(attached)")
        }
    }

    // MARK: Seeds

    /// A VMM's life: HELLO, ATTACH of the phone profile's eight vCPU
    /// threads, MAP_SHARED, the guest's driver probe as forwarded MMIO, a
    /// burst of the demo's requests, STATUS, DETACH; the small profile next
    /// to it on the other connection; and a misbehaving VMM.
    static func seeds() -> [FuzzSeed] {
        guard let harness = Harness.shared, let phone = harness.models["android"] else { return [] }
        let session = GuestSession(vm: phone)
        // A step is [peer][action][what the action reads] (see `step`).
        func accesses(_ lines: [Trace.Line]) -> [UInt8] {
            lines.prefix(40).flatMap { line -> [UInt8] in
                guard let encoded = DeviceTarget.encode(line.operation, vm: phone) else { return [] }
                return [0, 3] + encoded + (line.operation.isWrite ? [0] : [])
            }
        }
        let hello: [UInt8] = [0, 0, 1, 1, 0x1F, 0, 0, 0, 9] + Array("fuzz VMM ".utf8)
        let attach: [UInt8] = [0, 1, 0, 0, 0] + [UInt8](repeating: 0, count: 8) + [0]   // android, pool 0-7, "vm0"
        let map: [UInt8] = [0, 6, 1, 3]                                                // mirror + doorbells
        let status: [UInt8] = [0, 7, 1, 1]                                             // every VM
        let detach: [UInt8] = [0, 2]
        let probe = accesses(session.phases.first?.lines ?? [])
        let burst = accesses(session.phases.dropFirst(2).first?.lines ?? [])
        let small: [UInt8] = [1, 0, 1, 1, 0x1F, 0, 0, 0, 0] + [1, 1, 1, 0, 8, 0, 0, 1] + [1, 6, 1, 3]
        let broken: [UInt8] = [1, 9, 3, 0, 0, 5] + [1, 10, 1, 0] + [1, 8, 4, 1, 2, 3, 4]
        return [
            FuzzSeed(name: "probe-status", bytes: hello + attach + map + probe + status),
            FuzzSeed(name: "vmm-life", bytes: hello + attach + map + probe + burst + small + status + detach),
            FuzzSeed(name: "misbehaving", bytes: hello + attach + small + broken + burst),
        ]
    }
}

extension Trace.Operation {
    var isWrite: Bool { if case .write = self { return true } else { return false } }
}
