import Foundation
import Glibc
import SystemPackage
import Testing
import VCPUFreqCore
@testable import VCPUFreqLinux

/// Root: CI runs as root here; live scheduler tests need it (CAP_SYS_NICE).
let isRoot = geteuid() == 0
let needsRoot = "needs root (CAP_SYS_NICE) to change thread attributes; run the tests as root"

/// Hex of bytes, two digits each, no separators.
func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

/// Bytes from hex with optional spaces.
func bytes(hex text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// Descriptors open in this process right now.
func openDescriptorCount() -> Int {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).count
}

/// A fresh empty directory under /tmp, removed by the caller.
func temporaryDirectory(_ label: String) -> String {
    let path = "/tmp/vcpufreq-test-\(label)-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Reads what sched_getattr reports, independent of the wrapper: the raw
/// syscall through the shim would be the same code, so tests compare with
/// /proc where the kernel prints the values itself.
func procSched(_ tid: Int32) -> String {
    (try? String(contentsOfFile: "/proc/\(tid)/sched", encoding: .utf8)) ?? ""
}

/// The `Cpus_allowed_list:` of /proc/<tid>/status, the kernel's own print of the mask.
func procAllowedCPUs(_ tid: Int32) -> String? {
    let text = (try? String(contentsOfFile: "/proc/\(tid)/status", encoding: .utf8)) ?? ""
    for line in text.split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
        return line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
    }
    return nil
}

/// Field 19 (nice) of /proc/<tid>/stat, counted after the last ')'.
func procNice(_ tid: Int32) -> Int32? {
    guard let text = try? String(contentsOfFile: "/proc/\(tid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    return Int32(fields[19 - 3])
}

/// Field 41 (policy) of /proc/<tid>/stat.
func procPolicy(_ tid: Int32) -> UInt32? {
    guard let text = try? String(contentsOfFile: "/proc/\(tid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    return UInt32(fields[41 - 3])
}

/// The CPUs this machine has online (the tests' affinity targets).
let onlineCPUs: [Int] = {
    let text = (try? String(contentsOfFile: "/sys/devices/system/cpu/online", encoding: .utf8)) ?? "0"
    return (try? CPUList(parsing: text))?.ids ?? [0]
}()

/// Whether SCHED_RESET_ON_FORK is set on `tid`, from sched_getscheduler(2)
/// (the kernel ORs SCHED_RESET_ON_FORK, 0x40000000, into the policy); nil when it fails.
func kernelResetOnFork(_ tid: Int32) -> Bool? {
    let policy = sched_getscheduler(tid)
    return policy < 0 ? nil : policy & 0x4000_0000 != 0
}
