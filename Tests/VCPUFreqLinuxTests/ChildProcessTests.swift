import Foundation
import Glibc
import SystemPackage
import Testing
import VCPUFreqLinux

/// posix_spawn + waitpid children: exit codes and signals as waitpid tells
/// them, the environment and output the child was given, nothing else
/// inherited.
@Suite struct ChildProcessTests {
    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vcpufreq-child-\(name)-\(UUID().uuidString)").path
    }

    @Test func exitCodeAndOutput() throws {
        let output = Self.temporaryPath("out")
        defer { unlink(output) }
        let child = try ChildProcess(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], outputPath: output)
        #expect(child.wait(timeout: .seconds(10)) == .exited(3))
        #expect(!child.isRunning)
        #expect(try String(contentsOfFile: output, encoding: .utf8) == "out\nerr\n")
    }

    @Test func errorsCanBeDropped() throws {
        let output = Self.temporaryPath("out")
        defer { unlink(output) }
        let child = try ChildProcess(["/bin/sh", "-c", "echo out; echo err >&2"], outputPath: output, errorsToOutput: false)
        #expect(child.wait() == .exited(0))
        #expect(try String(contentsOfFile: output, encoding: .utf8) == "out\n")
    }

    @Test func environmentIsExactlyTheOneGiven() throws {
        let output = Self.temporaryPath("env")
        defer { unlink(output) }
        let child = try ChildProcess(["/usr/bin/env"], environment: ["VCPUFREQ_A": "1", "B": "two words"], outputPath: output)
        #expect(child.wait(timeout: .seconds(10)) == .exited(0))
        let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").sorted()
        #expect(lines == ["B=two words", "VCPUFREQ_A=1"])
    }

    @Test func stopSendsSIGTERMThenSIGKILL() throws {
        let polite = try ChildProcess(["/bin/sleep", "30"])
        #expect(polite.isRunning)
        #expect(polite.stop(grace: .seconds(5)) == .signaled(SIGTERM))
        let stubborn = try ChildProcess(["/bin/sh", "-c", "trap '' TERM; sleep 30"])
        usleep(200_000)  // the trap is set
        #expect(stubborn.stop(grace: .milliseconds(300)) == .signaled(SIGKILL))
        #expect(stubborn.wait(timeout: .seconds(1)) == .signaled(SIGKILL), "stays reaped")
    }

    @Test func noDescriptorBeyondTheStandardThreeIsInherited() throws {
        let output = Self.temporaryPath("fds")
        defer { unlink(output) }
        let opened = Glibc.open("/dev/null", O_RDONLY)
        let inheritable: Int32 = 100  // dup2 leaves O_CLOEXEC off
        #expect(dup2(opened, inheritable) == inheritable)
        close(opened)
        defer { close(inheritable) }
        let child = try ChildProcess(["/bin/ls", "/proc/self/fd"], outputPath: output)
        #expect(child.wait(timeout: .seconds(10)) == .exited(0))
        let fds = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
        #expect(!fds.contains(Int(inheritable)), "\(fds)")
        // 0, 1, 2 and the descriptor ls opens for the directory it lists.
        #expect(fds.count <= 4, "\(fds)")
    }

    @Test func aMissingExecutableIsAnErrno() {
        #expect(throws: Errno.noSuchFileOrDirectory) { try ChildProcess(["/nonexistent/vcpufreq"]) }
    }
}
