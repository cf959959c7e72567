import Glibc

/// Progress of a benchmark run on stderr: one line per step ("[ 7/35]
/// split · path 3 latency"), and within a long step a running count that
/// overwrites itself on a terminal (one line per update elsewhere would
/// flood a log, so off a terminal only the step lines are written).
public final class ProgressReporter: @unchecked Sendable {
    /// Notes start with "name: " ("doorbell: daemon pid 42"); none without a name.
    private let name: String?
    private let sink: ((String) -> Void)?
    private let overwrites: Bool
    private var step = 0
    public private(set) var total = 0
    private var current = ""
    private var lastUpdate: UInt64 = 0

    /// Progress to stderr; overwriting counts only when stderr is a terminal.
    public static func standardError(name: String?) -> ProgressReporter {
        ProgressReporter(name: name, overwrites: isatty(2) != 0) { text in
            let bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { buffer in
                    guard let base = buffer.baseAddress else { return -1 }
                    return Glibc.write(2, base + offset, buffer.count - offset)
                }
                if written <= 0 { break }
                offset += written
            }
        }
    }

    /// No output (tests).
    public static let silent = ProgressReporter(name: nil, overwrites: false, sink: nil)

    public init(name: String?, overwrites: Bool, sink: ((String) -> Void)?) {
        self.name = name
        self.overwrites = overwrites
        self.sink = sink
    }

    public func plan(steps: Int) { total = steps }

    /// A note that is not a step (a skipped placement, the calibration).
    public func note(_ text: String) {
        endLine()
        sink?((name.map { "\($0): " } ?? "") + "\(text)\n")
    }

    /// Starts the next step.
    public func begin(_ title: String) {
        endLine()
        step += 1
        let width = String(total).count
        let number = String(step).count < width ? String(repeating: " ", count: width - String(step).count) + "\(step)" : "\(step)"
        current = "[\(number)/\(total)] \(title)"
        if overwrites { sink?(current) } else { sink?(current + "\n") }
    }

    /// `done` of `of` within the step (at most ten updates a second).
    public func update(_ done: Int, of all: Int) {
        guard overwrites, let sink else { return }
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        let now = UInt64(time.tv_sec) * 1_000 + UInt64(time.tv_nsec) / 1_000_000
        guard done == all || now - lastUpdate >= 100 else { return }
        lastUpdate = now
        sink("\r\(current) \(done)/\(all)")
    }

    /// Ends an overwritten line.
    public func finish() { endLine() }

    private func endLine() {
        if overwrites, !current.isEmpty { sink?("\n") }
        current = ""
    }
}
