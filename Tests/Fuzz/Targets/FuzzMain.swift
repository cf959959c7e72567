import CVCPUFreqFuzzDriver
import Glibc

/// The body of the running target; a C callback cannot capture it.
nonisolated(unsafe) private var targetBody: ((UnsafeRawBufferPointer) -> Void)?

/// Hands `body` to libFuzzer, which calls it once per input (generated,
/// from a corpus directory, or a crash file given on the command line) and
/// exits. A body reports a broken invariant with `invariant`, which traps:
/// libFuzzer then writes the input as a reproducer.
public func fuzzMain(_ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
    targetBody = body
    let status = vcpufreq_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv) { data, count in
        targetBody?(UnsafeRawBufferPointer(start: data, count: count))
        return 0
    }
    exit(status)
}

/// Traps with `message` when `condition` is false: a broken invariant is a
/// crash to libFuzzer, with the message on stderr above the stack trace.
@inline(__always)
public func invariant(
    _ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line
) {
    if !condition { fatalError("invariant violated: \(message())", file: file, line: line) }
}
