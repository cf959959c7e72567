import Foundation
import Testing

@testable import VCPUFreqBPF

extension KernelTests {
    @Suite struct UtilHintMap {
        /// Decodes a raw util-hint value by the documented offsets (docs/bpf.md):
        /// util_min u16 @0, util_max u16 @2, flags u32 @4, slice_us u32 @8, seq u32 @12.
        static func decode(_ bytes: [UInt8]) -> (min: UInt16, max: UInt16, flags: UInt32, slice: UInt32, seq: UInt32) {
            func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
            func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
            return (u16(0), u16(2), u32(4), u32(8), u32(12))
        }

        static func key(_ tid: Int32) -> [UInt8] { withUnsafeBytes(of: UInt32(tid).littleEndian) { Array($0) } }

        /// A monitor pinning its hint map at a test path, removed afterwards.
        static func withPinnedMonitor(_ name: String, _ body: (VCPUThreadMonitor, String) throws -> Void) throws {
            let (directory, path) = Support.testPinPath(name)
            defer {
                unlink(path)
                rmdir(directory)
            }
            let monitor = try Support.startedMonitor { $0.utilHintPinPath = path }
            #expect(monitor.status.utilHintPinPath == path)
            try body(monitor, path)
        }

        @Test("set, read back through the pinned path, remove")
        func setReadRemove() throws {
            try Self.withPinnedMonitor("roundtrip") { monitor, path in
                let tid: Int32 = 4242
                #expect(try monitor.hint(tid: tid) == nil)
                let first = try monitor.setHint(
                    tid: tid, UtilHint(utilMin: 300, utilMax: 800, flags: [.latencySensitive], sliceMicroseconds: 500))
                let second = try monitor.setHint(
                    tid: tid, UtilHint(utilMin: 400, utilMax: 900, flags: [.boost], sliceMicroseconds: 0, sequence: 77))
                #expect(first == 1)
                #expect(second == 2)  // the monitor numbers updates, whatever the caller passed

                // Another process's view: the map opened by its pinned path (bpf_obj_get).
                let pinned = try BPFMap.openPinned(path: path)
                #expect(pinned.keySize == 4)
                #expect(pinned.valueSize == 16)
                let raw = try #require(try pinned.lookup(key: Self.key(tid)))
                let value = Self.decode(raw)
                #expect(value.min == 400 && value.max == 900)
                #expect(value.flags == 2 && value.slice == 0 && value.seq == 2)

                #expect(try monitor.removeHint(tid: tid) == true)
                #expect(try monitor.removeHint(tid: tid) == false)
                #expect(try pinned.lookup(key: Self.key(tid)) == nil)
            }
        }

        @Test("bpftool sees the documented layout", .enabled(if: Support.which("bpftool") != nil))
        func bpftoolDump() throws {
            try Self.withPinnedMonitor("bpftool") { monitor, path in
                try monitor.setHint(tid: 777, UtilHint(utilMin: 512, utilMax: 1024, flags: [.latencySensitive], sliceMicroseconds: 3000))
                let bpftool = try #require(Support.which("bpftool"))
                let result = try Support.run([bpftool, "map", "dump", "pinned", path, "-j"])
                #expect(result.status == 0, "\(result.error)")
                let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8))
                let entries = try #require(json as? [[String: Any]])
                #expect(entries.count == 1)
                let entry = try #require(entries.first)
                // Raw bytes, as bpftool prints them ("0x.."), decoded by the documented offsets.
                func bytes(_ field: String) -> [UInt8] {
                    ((entry[field] as? [String]) ?? []).compactMap { UInt8($0.dropFirst(2), radix: 16) }
                }
                #expect(bytes("key") == Self.key(777))
                let value = Self.decode(bytes("value"))
                #expect(value.min == 512 && value.max == 1024 && value.flags == 1 && value.slice == 3000 && value.seq == 1)
                // And by field name, through the BTF the object carries.
                let formatted = try #require(entry["formatted"] as? [String: Any])
                let fields = try #require(formatted["value"] as? [String: Any])
                #expect(formatted["key"] as? Int == 777)
                #expect(fields["util_min"] as? Int == 512)
                #expect(fields["util_max"] as? Int == 1024)
                #expect(fields["flags"] as? Int == 1)
                #expect(fields["slice_us"] as? Int == 3000)
                #expect(fields["seq"] as? Int == 1)
            }
        }

        @Test("a restarted monitor finds the pinned hints and keeps numbering")
        func survivesRestart() throws {
            let (directory, path) = Support.testPinPath("restart")
            defer {
                unlink(path)
                rmdir(directory)
            }
            do {
                let monitor = try Support.startedMonitor { $0.utilHintPinPath = path }
                try monitor.setHint(tid: 99, UtilHint(utilMin: 100))
                monitor.stop()
            }
            #expect(FileSystems.exists(path))
            let again = try Support.startedMonitor { $0.utilHintPinPath = path }
            #expect(try again.hint(tid: 99)?.utilMin == 100)
            #expect(try again.setHint(tid: 99, UtilHint(utilMin: 200)) == 2)
            try again.unpinUtilHintMap()
            #expect(!FileSystems.exists(path))
        }

        @Test("a map of another layout pinned at the path: run unpinned and say so",
              .enabled(if: Support.which("bpftool") != nil))
        func incompatiblePin() throws {
            let (directory, path) = Support.testPinPath("incompatible")
            defer {
                unlink(path)
                rmdir(directory)
            }
            let bpftool = try #require(Support.which("bpftool"))
            mkdir(directory, 0o700)
            let created = try Support.run([
                bpftool, "map", "create", path, "type", "hash", "key", "4", "value", "8", "entries", "16", "name", "util_hint",
            ])
            try #require(created.status == 0, "\(created.error)")
            let monitor = try Support.startedMonitor { $0.utilHintPinPath = path }
            let status = monitor.status
            #expect(status.utilHintPinPath == nil)
            let reason = try #require(status.missing.first { $0.target == "pin \(path)" }?.reason)
            #expect(reason.hasPrefix("the map pinned there does not fit this one"))
            #expect(reason.hasSuffix("remove it to pin this one"))
            #expect(status.isAttached("on_sched_switch"))
            // The old map is left alone; hints still work in the unpinned map.
            #expect(try BPFMap.openPinned(path: path).valueSize == 8)
            #expect(try monitor.setHint(tid: 5, UtilHint(utilMin: 1)) == 1)
        }

        @Test("TIDs that are not threads are refused; a stopped monitor says why")
        func badCalls() throws {
            let monitor = try Support.startedMonitor()
            #expect(throws: BPFError.self) { try monitor.setHint(tid: 0, UtilHint(utilMin: 1)) }
            #expect(throws: BPFError.self) { try monitor.track(tid: -5) }
            monitor.stop()
            #expect(monitor.status.state == .stopped)
            #expect {
                try monitor.track(tid: 1234)
            } throws: { error in
                guard case BPFError.wrongState(_, let reason) = error else { return false }
                return reason == "the BPF monitor is not running"
            }
        }
    }
}
