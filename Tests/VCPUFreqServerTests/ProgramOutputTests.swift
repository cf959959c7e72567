import Foundation
import Testing
import VCPUFreqTestSupport

/// The tests' program runner reads stdout and stderr side by side: a child
/// that writes a megabyte to stderr before its stdout (a sanitizer's report
/// does) finishes, and both outputs arrive whole. Reading stdout to its end
/// first, as the tests once did, blocks here for ever at 64 KiB.
@Suite struct ProgramOutputTests {
    @Test(.timeLimit(.minutes(1))) func aChildFillingStderrFirstStillFinishes() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "head -c 1048576 /dev/zero | tr '\\0' e >&2; head -c 300000 /dev/zero | tr '\\0' o; exit 3"]
        let run = try ProgramOutput.of(process)
        #expect(run.status == 3)
        #expect(run.stderr.count == 1_048_576 && run.stderr.allSatisfy { $0 == UInt8(ascii: "e") })
        #expect(run.stdout.count == 300_000 && run.stdout.allSatisfy { $0 == UInt8(ascii: "o") })
    }
}
