import Foundation
import Testing

@testable import VCPUFreqBench

/// The LD_PRELOAD counter library and its Swift reader agree on the file:
/// a child process counts into it, writes its pid, and records a stack per
/// allocation while armed; a file without the magic is left alone.
@Suite(.serialized, .disabled(if: underSanitizer, Comment(rawValue: allocationCountingNeedsPlainMalloc)))
struct MallocCounterTests {
    static var library: String { DaemonBenchSmokeTests.buildDirectory + "/" + MallocCounterFile.libraryFileName }

    /// Runs `/bin/sh -c :` with the library preloaded, counting into `path`.
    static func runShell(countingInto path: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", ":"]
        var environment = ProcessInfo.processInfo.environment
        environment["LD_PRELOAD"] = library
        environment[MallocCounterFile.environmentVariable] = path
        process.environment = environment
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return process.processIdentifier
    }

    static func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vcpufreq-malloc-\(UUID().uuidString)").path
    }

    @Test func aChildCountsIntoTheFile() throws {
        try #require(FileManager.default.fileExists(atPath: Self.library), "\(Self.library) not built")
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try MallocCounterFile(path: path)
        #expect(file.read() == MallocCounts())
        file.setArmed(true)
        let pid = try Self.runShell(countingInto: path)
        let counts = file.read()
        #expect(file.countingProcessID == pid, "the library writes its pid at the pid offset")
        #expect(counts.allocations > 0, "a shell allocates (glibc's own startup, stdio)")
        #expect(counts.bytes > 0)
        // Armed: one stack per allocating call, none for free.
        #expect(file.recordedStacks == counts.allocations)
        let stacks = file.stacks(recorded: 0..<file.recordedStacks)
        #expect(stacks.count == Int(min(counts.allocations, UInt64(MallocCounterFile.stackSlots))))
        #expect(stacks.allSatisfy { !$0.isEmpty }, "every stack has at least the allocator's caller")
    }

    @Test func disarmedRecordsNoStacks() throws {
        try #require(FileManager.default.fileExists(atPath: Self.library), "\(Self.library) not built")
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try MallocCounterFile(path: path)
        _ = try Self.runShell(countingInto: path)
        #expect(file.read().allocations > 0)
        #expect(file.recordedStacks == 0)
    }

    @Test func aFileWithoutTheMagicIsLeftAlone() throws {
        try #require(FileManager.default.fileExists(atPath: Self.library), "\(Self.library) not built")
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let zeros = Data(count: MallocCounterFile.size)
        try zeros.write(to: URL(fileURLWithPath: path))
        _ = try Self.runShell(countingInto: path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == zeros)
    }
}
