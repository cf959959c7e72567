import Foundation
import Glibc
import SystemPackage
import Testing
@testable import VCPUFreqLinux

/// What a listener does with what it finds at its path, and which file it
/// removes when it goes: a daemon must never take over or delete a socket
/// another process listens on.
@Suite struct SeqPacketListenerTests {
    @Test func aLiveListenerIsLeftAloneAndNamed() throws {
        let directory = temporaryDirectory("sock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/live.sock"
        let live = try SeqPacketListener(path: path)
        #expect(SeqPacketListener.occupant(of: path) == .live(pid: getpid()))
        #expect(throws: Errno.addressInUse) { try SeqPacketListener(path: path) }
        // Still the first listener's socket, still answering.
        #expect(FileIdentity.of(path: path) == live.boundFile)
        _ = try SeqPacketConnection.connect(to: path)
        #expect(try live.accept() != nil)  // the probe's connection came and went before
    }

    @Test func aStaleSocketIsReplaced() throws {
        let directory = temporaryDirectory("sock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/stale.sock"
        // A socket file nobody listens on: a second name for a listener's
        // socket, which stays behind when the listener is gone.
        do {
            let dead = try SeqPacketListener(path: directory + "/dead.sock")
            #expect(link(directory + "/dead.sock", path) == 0)
            _ = dead
        }
        #expect(FileStatusProbe.kind(of: path) == .socket)
        #expect(SeqPacketListener.occupant(of: path) == .stale)
        let listener = try SeqPacketListener(path: path)
        #expect(SeqPacketListener.occupant(of: path) == .live(pid: getpid()))
        _ = listener
    }

    @Test func occupants() throws {
        let directory = temporaryDirectory("sock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(SeqPacketListener.occupant(of: directory + "/nothing") == SeqPacketListener.Occupant.none)
        #expect(FileManager.default.createFile(atPath: directory + "/file", contents: Data([1])))
        #expect(SeqPacketListener.occupant(of: directory + "/file") == .notASocket)
    }

    /// The socket file was replaced (another daemon that holds no lock, an
    /// operator): the old listener's deinit must not remove the new one.
    @Test func deinitRemovesOnlyItsOwnFile() throws {
        let directory = temporaryDirectory("sock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/vcpufreq.sock"
        var old: SeqPacketListener? = try SeqPacketListener(path: path)
        #expect(rename(path, directory + "/moved.sock") == 0)
        let replacement = try SeqPacketListener(path: path)
        old = nil
        _ = old
        #expect(FileIdentity.of(path: path) == replacement.boundFile)
        _ = try SeqPacketConnection.connect(to: path)
        // Its own file (now under another name) is not touched by name either.
        #expect(FileStatusProbe.kind(of: directory + "/moved.sock") == .socket)
        // A file that is still its own goes with it.
        do { _ = try SeqPacketListener(path: directory + "/own.sock") }
        #expect(FileStatusProbe.kind(of: directory + "/own.sock") == .missing)
    }
}
