import Foundation
import Testing

/// The command line of the benchmark, run as a child process: its help is a
/// contract, bad options fail before anything starts, and a machine without
/// usable KVM gets exit status 69 (so scripts can tell "cannot measure here").
@Suite struct CommandTests {
    /// `vcpufreq bench doorbell` once the bench group exists, else the
    /// temporary top-level `vcpufreq doorbell`.
    static let command: [String] = {
        run(["bench", "doorbell", "--help"]).output.contains("USAGE: vcpufreq bench doorbell") ? ["bench", "doorbell"] : ["doorbell"]
    }()

    static func run(_ arguments: [String]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: vcpufreqExecutable())
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func helpNamesEveryOptionAndThePaths() {
        let (status, help) = Self.run(Self.command + ["--help"])
        #expect(status == 0)
        for option in ["--quick", "--out", "--placement", "--samples", "--poll-interval-us", "--readme", "--kvm-device", "--from"] {
            #expect(help.contains(option), "help lists \(option)")
        }
        for words in ["MMIO exit", "ioeventfd kick", "kicks", "mirror", "status 69"] {
            #expect(help.contains(words), "help mentions \(words)")
        }
    }

    @Test(arguments: [["--samples", "1"], ["--poll-interval-us", "10"], ["--placement", "sideways"]])
    func badOptionsFailBeforeAnythingStarts(arguments: [String]) {
        let (status, output) = Self.run(Self.command + arguments)
        #expect(status == 64, "\(output)")  // EX_USAGE
    }

    @Test func withoutUsableKVMTheExitStatusIs69() {
        let (status, output) = Self.run(Self.command + ["--quick", "--kvm-device", "/nonexistent/kvm", "--out", "/nonexistent"])
        #expect(status == 69)
        #expect(output.contains("KVM is not usable here"))
    }
}
