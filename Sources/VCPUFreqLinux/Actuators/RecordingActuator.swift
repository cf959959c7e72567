import Foundation
import SystemPackage
import VCPUFreqCore

/// Writes one JSON line per action on a vCPU thread:
///
///     {"t_ns":123,"action":"apply","tid":42,"vm":"phone","vcpu":0,"util_min":512,"util_max":1024,"latency":"slice=300us","cpus":"0-3"}
///
/// Behind `--dry-run` it is the only actuator (what would be done); in
/// tests it records while the real actuators apply. Each line is formatted
/// by hand into one reusable buffer and written with one write(2): no
/// encoder, no String per call.
public final class RecordingActuator {
    public enum Action: String, Sendable {
        case capture, apply, restore
    }

    private let descriptor: FileDescriptor
    private let ownsDescriptor: Bool
    /// A FileHandle we write through is kept alive so it cannot close the descriptor.
    private var handle: AnyObject?
    private var line: [UInt8] = []
    private let clock: () -> UInt64

    /// Records to `descriptor` (left open unless `closeOnDeinit`). `clock`
    /// gives t_ns (CLOCK_MONOTONIC by default; tests pass a fixed clock).
    public init(
        descriptor: FileDescriptor, closeOnDeinit: Bool = false,
        clock: @escaping () -> UInt64 = MonotonicClock.nowNanoseconds
    ) {
        self.descriptor = descriptor
        ownsDescriptor = closeOnDeinit
        self.clock = clock
        line.reserveCapacity(512)
    }

    /// Records to a file, created 0600 or appended to.
    public convenience init(path: String, clock: @escaping () -> UInt64 = MonotonicClock.nowNanoseconds) throws(Errno) {
        let opened: FileDescriptor
        do {
            opened = try FileDescriptor.open(
                FilePath(path), .writeOnly, options: [.create, .append, .closeOnExec], permissions: [.ownerReadWrite])
        } catch let error as Errno {
            throw error
        } catch {
            throw Errno.ioError
        }
        self.init(descriptor: opened, closeOnDeinit: true, clock: clock)
    }

    /// Records to a FileHandle (standard output for `--dry-run`, say); the
    /// handle stays open and owned by its creator.
    public convenience init(fileHandle: FileHandle, clock: @escaping () -> UInt64 = MonotonicClock.nowNanoseconds) {
        self.init(descriptor: FileDescriptor(rawValue: fileHandle.fileDescriptor), closeOnDeinit: false, clock: clock)
        handle = fileHandle
    }

    /// Records `hint` as applied (or, for capture/restore, the original
    /// attributes expressed as a hint: see `originalHint`).
    public func record(_ action: Action, target: ThreadTarget, hint: HostHint) throws(Errno) {
        line.removeAll(keepingCapacity: true)
        append("{\"t_ns\":")
        appendDecimal(clock())
        append(",\"action\":\"")
        append(action.rawValue)
        append("\",\"tid\":")
        appendDecimal(Int64(target.tid))
        append(",\"vm\":")
        appendJSONString(target.vm)
        append(",\"vcpu\":")
        appendDecimal(Int64(target.vcpu))
        append(",\"util_min\":")
        appendDecimal(UInt64(hint.utilMin))
        append(",\"util_max\":")
        appendDecimal(UInt64(hint.utilMax))
        append(",\"latency\":\"")
        switch hint.latency {
        case .none: append("none")
        case .slice(let microseconds):
            append("slice=")
            appendDecimal(UInt64(microseconds))
            append("us")
        case .nice(let value):
            append("nice=")
            appendDecimal(Int64(value))
        }
        append("\"")
        if let cpus = hint.affinity {
            append(",\"cpus\":\"")
            appendCPUList(cpus)
            append("\"")
        }
        append("}\n")
        let result = line.withUnsafeBytes { bytes in
            syscallResult { system_write(descriptor.rawValue, bytes) }
        }
        _ = try result.get()
    }

    /// The original attributes of a snapshot as a hint, for capture/restore
    /// lines: its clamps (0/1024 when unreadable), no latency hint, its mask.
    public static func originalHint(_ snapshot: ThreadSnapshot) -> HostHint {
        let clamp = snapshot.utilClamp ?? .unclamped
        return HostHint(
            utilMin: UInt16(clamping: clamp.min), utilMax: UInt16(clamping: clamp.max), latency: .none,
            affinity: snapshot.affinity)
    }

    // MARK: Formatting into `line`

    private func append(_ text: StaticString) {
        text.withUTF8Buffer { line.append(contentsOf: $0) }
    }

    private func append(_ text: String) {
        var text = text
        text.withUTF8 { line.append(contentsOf: $0) }
    }

    private func appendDecimal(_ value: UInt64) {
        // Find the most significant digit's place, then write digits from it.
        var divisor: UInt64 = 1
        while value / divisor >= 10 { divisor *= 10 }
        while divisor > 0 {
            line.append(UInt8(ascii: "0") + UInt8((value / divisor) % 10))
            divisor /= 10
        }
    }

    private func appendDecimal(_ value: Int64) {
        if value < 0 {
            line.append(UInt8(ascii: "-"))
            appendDecimal(value.magnitude)
        } else {
            appendDecimal(UInt64(value))
        }
    }

    /// A JSON string: quotes, backslashes and control characters escaped.
    private func appendJSONString(_ text: String) {
        line.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                line.append(UInt8(ascii: "\\"))
                line.append(byte)
            case 0..<0x20:
                append("\\u00")
                line.append(hexDigit(byte >> 4))
                line.append(hexDigit(byte & 0xf))
            default:
                line.append(byte)
            }
        }
        line.append(UInt8(ascii: "\""))
    }

    private func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// The kernel's list format (`0-3,6`), as CPUList prints it.
    private func appendCPUList(_ cpus: CPUList) {
        let ids = cpus.ids
        var index = 0
        var first = true
        while index < ids.count {
            var end = index
            while end + 1 < ids.count && ids[end + 1] == ids[end] + 1 { end += 1 }
            if !first { line.append(UInt8(ascii: ",")) }
            first = false
            appendDecimal(Int64(ids[index]))
            if end > index {
                line.append(UInt8(ascii: "-"))
                appendDecimal(Int64(ids[end]))
            }
            index = end + 1
        }
    }

    deinit {
        if ownsDescriptor { _ = system_close(descriptor.rawValue) }
    }
}
