import Testing

@testable import VCPUFreqBPF

extension KernelTests {
    @Suite struct Benchmark {
        @Test("ping-pong threads are tracked and counted: a switch-out per round trip each")
        func pingPongCounted() throws {
            let monitor = try Support.startedMonitor()
            let roundTrips = 2_000
            let tids = Box<[Int32]>()
            let run = try #require(
                ContextSwitchBenchmark.pingPong(roundTrips: roundTrips, cpu: 0) { threads in
                    tids.set(threads)
                    for tid in threads { try? monitor.track(tid: tid) }
                })
            #expect(run.roundTrips == roundTrips)
            #expect(run.roundTripsPerSecond > 0)
            for tid in try #require(tids.value) {
                let stats = try settledStats(monitor, tid: tid)
                // On one CPU each thread must leave it once per round trip for
                // the other to answer: blocked in read(), or preempted by the
                // woken peer before it got there.
                let switches = stats.voluntarySwitches + stats.involuntarySwitches
                #expect(switches >= UInt64(roundTrips) - 1)
                // Only a thread that blocked is woken (the start gate, the round trips).
                #expect(stats.wakeups + 1 >= stats.voluntarySwitches)
                #expect(stats.wakeups <= stats.voluntarySwitches + 1)
                if Support.kernelHasSchedInfo { #expect(stats.runDelay.count == switches) }
                #expect(stats.lastCPU == 0)
                #expect(sumFitsBuckets(stats.runDelay))
            }
        }

        @Test("the A/B comparison runs every mode and reports ratios")
        func comparison() throws {
            var configuration = VCPUThreadMonitor.Configuration()
            configuration.utilHintPinPath = nil
            configuration.countKVMExits = false
            let result = ContextSwitchBenchmark.compare(roundTrips: 2_000, repetitions: 1, configuration: configuration)
            print(result)
            #expect(result.monitorStatus.isRunning, "\(result.monitorStatus)")
            #expect(result.detached.count == 1)
            #expect(result.attachedUntracked.count == 1)
            #expect(result.attachedTracked.count == 1)
            #expect((result.trackedRatio ?? 0) > 0)
            #expect((result.untrackedRatio ?? 0) > 0)
        }
    }
}
