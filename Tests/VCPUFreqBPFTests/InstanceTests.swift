import Foundation
import Testing
import VCPUFreqClient
import VCPUFreqProtocol

@testable import VCPUFreqBPF

extension KernelTests {
    /// BPF pins of daemon instances (docs/bpf.md, "Pins and daemon
    /// instances"): each state directory pins in its own directory, which
    /// it locks; a daemon unpins at exit only what still names its own map.
    @Suite struct Instances {
        /// The pin path STATUS reports (`… util-hint map pinned at PATH; …`).
        static func pinPath(_ status: StatusDocument) -> String? {
            guard let range = status.daemon.bpf.range(of: "util-hint map pinned at ") else { return nil }
            return String(status.daemon.bpf[range.upperBound...].prefix { $0 != ";" })
        }

        static func directory(of path: String) -> String { (path as NSString).deletingLastPathComponent }

        @Test("two daemons side by side: own pins; one's exit leaves the other's map; a replaced pin stays; a shared --bpf-pin-path is refused")
        func sideBySide() throws {
            let first = try DaemonProcess("instance-a", arguments: ["--clamp", "bpf-map,none"])
            defer { first.stop() }
            let second = try DaemonProcess("instance-b", arguments: ["--clamp", "bpf-map,none"])
            defer { second.stop() }
            let client = try first.connect()
            let firstStatus = try client.status()
            let firstPin = try #require(Self.pinPath(firstStatus), "\(firstStatus.daemon.bpf)")
            let secondPin = try #require(Self.pinPath(try second.connect().status()))
            #expect(firstPin != secondPin)
            #expect(firstPin.hasPrefix("/sys/fs/bpf/vcpufreq-state-") && secondPin.hasPrefix("/sys/fs/bpf/vcpufreq-state-"))
            let firstID = try #require(PinnedMaps.id(at: firstPin))
            let secondID = try #require(PinnedMaps.id(at: secondPin))
            #expect(firstID != secondID)

            // A third daemon told to pin in the first one's directory: refused, nothing loaded.
            let other = NSTemporaryDirectory() + "vcpufreq-instance-c-\(getpid())"
            try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: other) }
            let refused = try Support.run([
                "/usr/bin/timeout", "10", DaemonProcess.executable, "serve", "--topology", first.directory + "/topology.toml",
                "--socket", other + "/socket", "--state-dir", other + "/state", "--bpf-pin-path", firstPin,
            ])
            #expect(refused.status == 1, "\(refused.error)")
            #expect(refused.error.contains(
                "cannot use BPF pin directory \(Self.directory(of: firstPin)): another vcpufreq daemon (pid \(first.pid))"),
                "\(refused.error)")
            #expect(PinnedMaps.id(at: firstPin) == firstID)

            let stop = StopFlag()
            let threads = [try Daemon.idleThread(stop), try Daemon.idleThread(stop)]
            defer {
                stop.raise()
                for thread in threads { thread.join() }
            }
            let tids = threads.map(\.tid)
            _ = try client.attach(vmName: "instance-test", threadIDs: tids)
            try client.write(vcpu: 0, offset: Daemon.utilHintOffset(vcpu: 0), value: 600, sync: true)
            _ = try Daemon.status(client) { $0.vms.first?.vcpus.first?.utilMin == 600 }
            let firstMap = try BPFMap.openPinned(path: firstPin)
            let secondMap = try BPFMap.openPinned(path: secondPin)
            let key = UtilHintMap.key(tids[0])
            #expect(try firstMap.lookup(key: key).map(UtilHintMap.decode)?.min == 600)
            #expect(try secondMap.lookup(key: key) == nil, "a hint in the other instance's map")

            // The second stops: its pin and directory go; the first's stay.
            let secondLog = second.stop()
            #expect(PinnedMaps.id(at: secondPin) == nil, "\(secondLog)")
            #expect(!FileManager.default.fileExists(atPath: Self.directory(of: secondPin)))
            #expect(PinnedMaps.id(at: firstPin) == firstID)
            #expect(try firstMap.lookup(key: key).map(UtilHintMap.decode)?.min == 600)

            // Someone else pins a map where the first daemon's was: at its
            // exit the first leaves that pin alone.
            #expect(unlink(firstPin) == 0)
            let replacement = try Support.startedMonitor { $0.utilHintPinPath = firstPin }
            defer {
                try? replacement.unpinUtilHintMap()
                rmdir(Self.directory(of: firstPin))
            }
            let replacementID = try #require(PinnedMaps.id(at: firstPin))
            #expect(replacementID != firstID)
            #expect(try client.detach() == 2)
            let firstLog = first.stop()
            #expect(PinnedMaps.id(at: firstPin) == replacementID, "\(firstLog)")
            #expect(firstLog.contains("pin left alone: it no longer names this daemon's map"), "\(firstLog)")
        }
    }
}
