#if VCPUFREQ_FUZZ
import CVCPUFreqFuzzDriver
import Glibc

/// The body of the running target; a C callback cannot capture it.
nonisolated(unsafe) private var runningBody: ((UnsafeRawBufferPointer) -> Void)?

/// The main of a fuzz-NAME executable (built by scripts/fuzz only): hands
/// the body of target `name` to libFuzzer, which calls it once per input
/// (generated, from corpus directories, or a crash file given on the
/// command line) and exits. A broken invariant traps (`FuzzInvariant`), so
/// libFuzzer writes the input as a reproducer.
public func fuzzMain(_ name: String) -> Never {
    guard let target = FuzzTargets.all.first(where: { $0.name == name }) else {
        fatalError("no fuzz target \(name) in FuzzTargets.all")
    }
    runningBody = target.run
    let status = vcpufreq_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv) { data, count in
        // libFuzzer passes a null pointer with an empty input.
        runningBody?(count == 0 ? UnsafeRawBufferPointer(start: nil, count: 0) : UnsafeRawBufferPointer(start: data, count: count))
        return 0
    }
    exit(status)
}
#endif
