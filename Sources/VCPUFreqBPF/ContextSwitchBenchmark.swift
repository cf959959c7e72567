import Glibc

/// What the scheduler programs cost: a context-switch-heavy workload timed
/// with the programs detached, attached with the workload's threads
/// untracked (the cost every other thread on the host pays: one hash lookup
/// per event), and attached with them tracked. A/B in one run, as ratios.
public enum ContextSwitchBenchmark {
    /// One timed ping-pong.
    public struct Run: Equatable, Sendable {
        public var roundTrips: Int
        public var nanoseconds: UInt64
        /// Round trips per second (each is two context switches).
        public var roundTripsPerSecond: Double {
            nanoseconds == 0 ? 0 : Double(roundTrips) * 1e9 / Double(nanoseconds)
        }
    }

    /// Two threads pinned to `cpu` pass one byte back and forth over two
    /// pipes `roundTrips` times; each round trip is two context switches on
    /// that CPU. `prepare` gets both TIDs before the threads start (to track
    /// them). nil when threads or pipes cannot be made.
    public static func pingPong(roundTrips: Int, cpu: Int = 0, prepare: ([Int32]) -> Void = { _ in }) -> Run? {
        var ping: [Int32] = [-1, -1]
        var pong: [Int32] = [-1, -1]
        guard pipe(&ping) == 0 else { return nil }
        guard pipe(&pong) == 0 else {
            close(ping[0]); close(ping[1])
            return nil
        }
        let count = max(0, roundTrips)
        let (pingRead, pingWrite, pongRead, pongWrite) = (ping[0], ping[1], pong[0], pong[1])
        defer { for fd in [pingRead, pongRead, pongWrite] { close(fd) } }

        guard
            let server = NativeThread(cpu: cpu, body: {
                var byte: UInt8 = 0
                for _ in 0..<count {
                    guard read(pingRead, &byte, 1) == 1, write(pongWrite, &byte, 1) == 1 else { return }
                }
            })
        else {
            close(pingWrite)
            return nil
        }
        guard
            let client = NativeThread(cpu: cpu, body: {
                var byte: UInt8 = 0
                for _ in 0..<count {
                    guard write(pingWrite, &byte, 1) == 1, read(pongRead, &byte, 1) == 1 else { return }
                }
            })
        else {
            close(pingWrite)  // the server reads end-of-file and returns
            server.join()
            return nil
        }
        defer { close(pingWrite) }
        prepare([server.tid, client.tid])
        let start = NativeThread.monotonicNanoseconds()
        server.release()
        client.release()
        client.join()
        server.join()
        return Run(roundTrips: count, nanoseconds: NativeThread.monotonicNanoseconds() - start)
    }

    /// Round trips per second of each repetition, per mode.
    public struct Comparison: Sendable, CustomStringConvertible {
        public var detached: [Double] = []
        public var attachedUntracked: [Double] = []
        public var attachedTracked: [Double] = []
        /// The monitor's status in the attached runs (why they are missing if they are).
        public var monitorStatus = MonitorStatus()

        static func median(_ values: [Double]) -> Double? {
            guard !values.isEmpty else { return nil }
            let sorted = values.sorted()
            let middle = sorted.count / 2
            return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        }

        /// Median attached-and-tracked throughput over median detached (1.0 = free).
        public var trackedRatio: Double? {
            guard let a = Self.median(attachedTracked), let d = Self.median(detached), d > 0 else { return nil }
            return a / d
        }

        /// Median attached-untracked throughput over median detached.
        public var untrackedRatio: Double? {
            guard let a = Self.median(attachedUntracked), let d = Self.median(detached), d > 0 else { return nil }
            return a / d
        }

        public var description: String {
            func line(_ name: String, _ values: [Double]) -> String {
                let median = Self.median(values).map { String(Int($0)) } ?? "-"
                return "\(name): median \(median) round trips/s over \(values.count) runs"
            }
            var text = [
                line("detached", detached), line("attached, untracked", attachedUntracked),
                line("attached, tracked", attachedTracked),
            ].joined(separator: "\n")
            if let ratio = untrackedRatio { text += "\nuntracked/detached ratio: \(ratio)" }
            if let ratio = trackedRatio { text += "\ntracked/detached ratio: \(ratio)" }
            if !monitorStatus.isRunning { text += "\n\(monitorStatus)" }
            return text
        }
    }

    /// Runs the three modes `repetitions` times each, interleaved (the order
    /// rotates every repetition so drift and neighbours hit all modes alike).
    /// The monitor is started for the attached runs and stopped for the
    /// detached ones; its util-hint map is not pinned.
    public static func compare(
        roundTrips: Int = 20_000, repetitions: Int = 5, cpu: Int = 0,
        configuration: VCPUThreadMonitor.Configuration = {
            var configuration = VCPUThreadMonitor.Configuration()
            configuration.utilHintPinPath = nil
            return configuration
        }()
    ) -> Comparison {
        enum Mode: CaseIterable { case detached, untracked, tracked }
        let monitor = VCPUThreadMonitor(configuration: configuration)
        var result = Comparison()
        for repetition in 0..<max(1, repetitions) {
            let modes = Mode.allCases
            for step in 0..<modes.count {
                let mode = modes[(step + repetition) % modes.count]
                switch mode {
                case .detached:
                    monitor.stop()
                    if let run = pingPong(roundTrips: roundTrips, cpu: cpu) {
                        result.detached.append(run.roundTripsPerSecond)
                    }
                case .untracked, .tracked:
                    result.monitorStatus = monitor.start()
                    guard result.monitorStatus.isRunning else { continue }
                    let run = pingPong(roundTrips: roundTrips, cpu: cpu) { tids in
                        guard mode == .tracked else { return }
                        for tid in tids { try? monitor.track(tid: tid) }
                    }
                    guard let run else { continue }
                    if mode == .tracked {
                        result.attachedTracked.append(run.roundTripsPerSecond)
                    } else {
                        result.attachedUntracked.append(run.roundTripsPerSecond)
                    }
                }
            }
        }
        monitor.stop()
        return result
    }
}
