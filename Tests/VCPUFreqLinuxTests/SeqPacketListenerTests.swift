import Foundation
import Glibc
import SystemPackage
import Testing
@testable import VCPUFreqLinux

/// The two listener kinds the daemon binds: its own SOCK_SEQPACKET socket
/// and the SOCK_STREAM sockets of `--vhost-user-scmi`. Both follow one set
/// of rules (UnixSocketIO.bindAndListen / closeListener).
enum ListenerKind: CaseIterable, CustomStringConvertible, Sendable {
    case seqPacket, stream

    var description: String { self == .seqPacket ? "SOCK_SEQPACKET" : "SOCK_STREAM" }

    func listen(_ path: String) throws -> any UnixSocketListener {
        switch self {
        case .seqPacket: return try SeqPacketListener(path: path, access: .init(), backlog: 8)
        case .stream: return try StreamListener(path: path, access: .init(), backlog: 8)
        }
    }

    func occupant(_ path: String) -> UnixSocketOccupant {
        switch self {
        case .seqPacket: return SeqPacketListener.occupant(of: path)
        case .stream: return StreamListener.occupant(of: path)
        }
    }

    /// Connects (blocking) and drops the connection; throws when nobody listens.
    func connect(_ path: String) throws {
        switch self {
        case .seqPacket: _ = try SeqPacketConnection.connect(to: path)
        case .stream: _ = try StreamConnection.connect(to: path)
        }
    }

    /// Whether a connection was waiting on `listener`.
    func accept(_ listener: any UnixSocketListener) throws -> Bool {
        switch listener {
        case let listener as SeqPacketListener: return try listener.accept() != nil
        case let listener as StreamListener: return try listener.accept() != nil
        default: Issue.record("unknown listener \(listener)"); return false
        }
    }
}

/// What a listener does with what it finds at its path, and which file it
/// removes when it goes: a daemon must never take over or delete a socket
/// another process listens on.
@Suite struct SeqPacketListenerTests {
    @Test(arguments: ListenerKind.allCases)
    func aLiveListenerIsLeftAloneAndNamed(kind: ListenerKind) throws {
        let directory = temporaryDirectory("sock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/live.sock"
        let live = try kind.listen(path)
        #expect(kind.occupant(path) == .live(pid: getpid()))
        #expect(throws: Errno.addressInUse) { try kind.listen(path) }
        // Still the first listener's socket, still answering.
        #expect(FileIdentity.of(path: path) == live.boundFile)
        try kind.connect(path)
        #expect(try kind.accept(live))  // the probe's connection came and went before
    }

    /// A listener of the other kind at the path (a vhost-user socket path
    /// given the daemon's own socket): connect fails with EPROTOTYPE, so it
    /// is live, with no pid, and never removed.
    @Test(arguments: ListenerKind.allCases)
    func aListenerOfTheOtherKindIsLive(kind: ListenerKind) throws {
        let directory = temporaryDirectory("sock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/other.sock"
        let other: ListenerKind = kind == .seqPacket ? .stream : .seqPacket
        let live = try other.listen(path)
        #expect(kind.occupant(path) == .live(pid: nil))
        #expect(throws: Errno.addressInUse) { try kind.listen(path) }
        #expect(FileIdentity.of(path: path) == live.boundFile)
        try other.connect(path)
    }

    @Test(arguments: ListenerKind.allCases)
    func aStaleSocketIsReplaced(kind: ListenerKind) throws {
        let directory = temporaryDirectory("sock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/stale.sock"
        // A socket file nobody listens on: a second name for a listener's
        // socket, which stays behind when the listener is gone.
        do {
            let dead = try kind.listen(directory + "/dead.sock")
            #expect(link(directory + "/dead.sock", path) == 0)
            _ = dead
        }
        #expect(FileStatusProbe.kind(of: path) == .socket)
        #expect(kind.occupant(path) == .stale)
        let listener = try kind.listen(path)
        #expect(kind.occupant(path) == .live(pid: getpid()))
        _ = listener
    }

    @Test(arguments: ListenerKind.allCases)
    func occupants(kind: ListenerKind) throws {
        let directory = temporaryDirectory("sock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(kind.occupant(directory + "/nothing") == UnixSocketOccupant.none)
        #expect(FileManager.default.createFile(atPath: directory + "/file", contents: Data([1])))
        #expect(kind.occupant(directory + "/file") == .notASocket)
        // A file that is not a socket is never deleted: bind fails on it.
        #expect(throws: Errno.addressInUse) { try kind.listen(directory + "/file") }
        #expect(FileManager.default.contents(atPath: directory + "/file") == Data([1]))
    }

    /// The socket file was replaced (another daemon that holds no lock, an
    /// operator): the old listener's deinit must not remove the new one.
    @Test(arguments: ListenerKind.allCases)
    func deinitRemovesOnlyItsOwnFile(kind: ListenerKind) throws {
        let directory = temporaryDirectory("sock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/vcpufreq.sock"
        var old: (any UnixSocketListener)? = try kind.listen(path)
        #expect(rename(path, directory + "/moved.sock") == 0)
        let replacement = try kind.listen(path)
        old = nil
        _ = old
        #expect(FileIdentity.of(path: path) == replacement.boundFile)
        try kind.connect(path)
        // Its own file (now under another name) is not touched by name either.
        #expect(FileStatusProbe.kind(of: directory + "/moved.sock") == .socket)
        // A file that is still its own goes with it.
        do { _ = try kind.listen(directory + "/own.sock") }
        #expect(FileStatusProbe.kind(of: directory + "/own.sock") == .missing)
    }
}
