/// What a fuzz target body reports when an invariant does not hold.
///
/// Under libFuzzer (scripts/fuzz) it traps with the message: libFuzzer
/// keeps the input as a reproducer. The regression tests of the ordinary
/// suite record it as a test failure instead (`FuzzInvariant.report`).
public enum FuzzInvariant {
    nonisolated(unsafe) public static var report: (String, StaticString, UInt) -> Void = { message, file, line in
        fatalError("invariant violated: \(message)", file: file, line: line)
    }
}

/// Reports `message` when `condition` is false.
@inline(__always)
public func invariant(
    _ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line
) {
    if !condition { FuzzInvariant.report(message(), file, line) }
}
