import Foundation
import Testing
import VCPUFreqCore

extension DaemonTests {
    @Suite struct HostFrequency {
        /// Rewrites a sysfs-like file in place (sysfs files are never
        /// replaced; the daemon keeps it open and re-reads it with pread).
        func overwrite(_ path: String, _ text: String) throws {
            let handle = try #require(FileHandle(forWritingAtPath: path))
            try handle.truncate(atOffset: 0)
            try handle.write(contentsOf: Data(text.utf8))
            try handle.close()
        }

        /// cur_perf comes from the cached host frequency: a fixture
        /// scaling_cur_freq (--sysfs-root) re-read every 10 ms, never per
        /// guest read. The mirror, READ, the util-hint cur_freq and the
        /// shared page host area all follow it.
        @Test func curPerfFollowsTheCachedHostFrequency() throws {
            let sysfs = makeTemporaryDirectory("sysfs")
            defer { try? FileManager.default.removeItem(atPath: sysfs) }
            let directory = sysfs + "/devices/system/cpu/cpu\(TestTopology.onlineCPUs[0])/cpufreq"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let file = directory + "/scaling_cur_freq"
            try "1200000\n".write(toFile: file, atomically: false, encoding: .utf8)

            let daemon = try Daemon(
                topology: TestTopology.toml(nominal: false), arguments: ["--sysfs-root", sysfs, "--frequency-refresh-ms", "10"])
            let vm = try AttachedVM(daemon: daemon)
            let shared = try vm.mapShared()
            // Every vCPU models the one host cluster (same capacity, same
            // table), so cur_perf is the host's frequency as it is.
            func seen(_ vcpu: Int) throws -> [UInt64] {
                [
                    try vm.client.read(vcpu: vcpu, offset: Offset.upstream(vcpu, Offset.curPerf)).value,
                    UInt64(shared.mirrorWord(vcpu: vcpu, .curPerf)),
                    try vm.client.read(vcpu: vcpu, offset: Offset.utilHint(vcpu, Offset.curFreq)).value,
                    UInt64(shared.guest.readHostArea(slot: vcpu)?.currentPerformanceKHz ?? 0),
                ]
            }
            #expect(try seen(0) == Array(repeating: 1_200_000, count: 4))
            #expect(try seen(1) == Array(repeating: 1_200_000, count: 4))

            try overwrite(file, "1700000\n")
            #expect(eventually { shared.mirrorWord(vcpu: 1, .curPerf) == 1_700_000 })
            #expect(try seen(0) == Array(repeating: 1_700_000, count: 4))
            #expect(try seen(1) == Array(repeating: 1_700_000, count: 4))

            // Above the vCPU's table: its maximum.
            try overwrite(file, "2600000\n")
            #expect(eventually { shared.mirrorWord(vcpu: 0, .curPerf) == TestTopology.maxKHz })
            // Unreadable text: the last good value stays.
            try overwrite(file, "n/a\n")
            usleep(50_000)
            #expect(try seen(0) == Array(repeating: UInt64(TestTopology.maxKHz), count: 4))
        }
    }
}
