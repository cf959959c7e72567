import Foundation
import Glibc

/// What a program printed and how it ended.
public struct ProgramOutput: Sendable {
    public var status: Int32
    public var stdout: Data
    public var stderr: Data

    public var standardOutput: String { String(decoding: stdout, as: UTF8.self) }
    public var standardError: String { String(decoding: stderr, as: UTF8.self) }

    /// Runs `process` (executable, arguments, environment, directory already
    /// set) to completion with its stdout and stderr on pipes that are read
    /// side by side (poll(2)), never one after the other: a child that fills
    /// one pipe (a sanitizer's report on stderr runs past 64 KiB) while the
    /// test waits for the other's end would block for ever. `start` starts
    /// it (a caller may need a different signal mask).
    public static func of(_ process: Process, start: (Process) throws -> Void = { try $0.run() }) throws -> ProgramOutput {
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try start(process)  // Process closes our copies of the write ends
        let outputs = readSideBySide([out.fileHandleForReading.fileDescriptor, err.fileHandleForReading.fileDescriptor])
        process.waitUntilExit()
        return ProgramOutput(status: process.terminationStatus, stdout: outputs[0], stderr: outputs[1])
    }

    /// Everything written to each descriptor until its end of file.
    static func readSideBySide(_ descriptors: [Int32]) -> [Data] {
        var polled = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var outputs = [Data](repeating: Data(), count: descriptors.count)
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var open = descriptors.count
        while open > 0 {
            guard poll(&polled, nfds_t(polled.count), -1) >= 0 || errno == EINTR else { break }
            for index in polled.indices where polled[index].fd >= 0 && polled[index].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(polled[index].fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    outputs[index].append(contentsOf: buffer[0..<count])
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    polled[index].fd = -1
                    open -= 1
                }
            }
        }
        return outputs
    }
}
