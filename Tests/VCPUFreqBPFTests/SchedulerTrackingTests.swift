import Testing

@testable import VCPUFreqBPF

extension KernelTests {
    @Suite struct SchedulerTracking {
        static let millisecond: UInt64 = 1_000_000

        @Test("busy 50 ms then sleep, N times: runtime and wake-ups match", arguments: [4, 8])
        func runtimeAndWakeups(iterations: Int) throws {
            let monitor = try Support.startedMonitor()
            let busy = 50 * Self.millisecond
            let (kernel, stats, _) = try runTracked(monitor) {
                for _ in 0..<iterations {
                    NativeThread.burnCPU(nanoseconds: busy)
                    NativeThread.sleep(nanoseconds: 2 * Self.millisecond)
                }
            }
            let known = UInt64(iterations) * busy
            print("runtime \(stats.runtimeNanoseconds) ns (known \(known), kernel \(kernel.runtimeNanoseconds)); "
                + "wakeups \(stats.wakeups); switches v\(stats.voluntarySwitches)/i\(stats.involuntarySwitches) "
                + "(kernel v\(kernel.voluntarySwitches)/i\(kernel.involuntarySwitches)); delay \(stats.runDelay)")
            // The work is known: N x 50 ms of CPU time, plus a little for the
            // loop, the sleeps and the thread's exit.
            #expect(stats.runtimeNanoseconds >= known)
            #expect(stats.runtimeNanoseconds <= known + known / 10 + 5 * Self.millisecond)
            // And the kernel's own clock for the same thread agrees (the BPF
            // count also covers the start gate and the exit: a few ms at most).
            #expect(stats.runtimeNanoseconds >= kernel.runtimeNanoseconds)
            #expect(stats.runtimeNanoseconds <= kernel.runtimeNanoseconds + 5 * Self.millisecond)
            // One wake-up per sleep, one for the start gate.
            #expect(stats.wakeups >= UInt64(iterations))
            #expect(stats.wakeups <= UInt64(iterations) + 2)
            // Voluntary switches: one per sleep (kernel), the start gate and the exit.
            #expect(stats.voluntarySwitches >= kernel.voluntarySwitches)
            #expect(stats.voluntarySwitches <= kernel.voluntarySwitches + 2)
            #expect(stats.involuntarySwitches >= kernel.involuntarySwitches)
            #expect(stats.involuntarySwitches <= kernel.involuntarySwitches + 2)
            // Every run (ended by a switch-out) had one wait before it.
            if Support.kernelHasSchedInfo {
                #expect(stats.runDelay.count == stats.voluntarySwitches + stats.involuntarySwitches)
                // And the waits add up to the kernel's run_delay, give or take the
                // start gate and the exit, which only the BPF side sees.
                #expect(stats.runDelay.sumNanoseconds + Self.millisecond >= kernel.runDelayNanoseconds)
                #expect(stats.runDelay.sumNanoseconds <= kernel.runDelayNanoseconds + 5 * Self.millisecond)
            }
            #expect(stats.runDelay.bucketTotal == stats.runDelay.count)
            #expect(sumFitsBuckets(stats.runDelay))
            #expect(stats.lastCPU.map { (0..<NativeThread.onlineCPUs).contains($0) } == true)
        }

        /// B burns three SCHED_RR slices of CPU on one CPU, alone and then
        /// behind a busy SCHED_RR thread of the same priority on the same CPU.
        /// Real-time round robin makes the test independent of whatever else
        /// the machine runs (CFS work cannot delay either thread): alone, B
        /// never waits; behind the hog, it waits a whole slice each time its
        /// own slice ends. (About half a second of one CPU at RT priority 1.)
        @Test("a thread kept waiting behind a busy thread on its CPU shows run delay and preemptions")
        func runDelayBehindBusyThread() throws {
            let monitor = try Support.startedMonitor()
            let cpu = NativeThread.onlineCPUs - 1
            let work = 3 * Support.roundRobinSliceNanoseconds
            let rr = Box<Bool>()
            let idle = try runTracked(monitor, cpu: cpu) {
                rr.set(Support.setRoundRobin())
                NativeThread.burnCPU(nanoseconds: work)
            }
            try #require(rr.value == true, "SCHED_RR refused")

            let stop = StopFlag()
            let hog = try #require(
                NativeThread(cpu: cpu) {
                    Support.setRoundRobin()
                    while !stop.isRaised {}
                })
            hog.release()
            defer {
                stop.raise()
                hog.join()
            }
            let contended = try runTracked(monitor, cpu: cpu) {
                Support.setRoundRobin()
                NativeThread.burnCPU(nanoseconds: work)
            }

            let (i, c) = (idle.stats, contended.stats)
            print("alone: \(i.runDelay) p50 \(i.runDelay.p50Microseconds ?? 0) p99 \(i.runDelay.p99Microseconds ?? 0) us, involuntary \(i.involuntarySwitches)")
            print("behind a busy thread: \(c.runDelay) p50 \(c.runDelay.p50Microseconds ?? 0) p99 \(c.runDelay.p99Microseconds ?? 0) us, involuntary \(c.involuntarySwitches)")
            // Behind the hog, B is preempted at the end of each of its slices.
            #expect(c.involuntarySwitches >= 2)
            #expect(c.involuntarySwitches >= contended.kernel.involuntarySwitches)
            // And waits the hog's slices: far above anything B waits alone.
            let p99 = try #require(c.runDelay.quantileBucket(0.99))
            let idleP99 = try #require(i.runDelay.quantileBucket(0.99))
            #expect(RunDelayHistogram.bucketRangeMicroseconds(p99).upperBound > Support.roundRobinSliceNanoseconds / 2_000)
            #expect(p99 >= idleP99 + 3)
            #expect(c.runDelay.sumNanoseconds >= Support.roundRobinSliceNanoseconds)
            #expect(c.runDelay.sumNanoseconds > 4 * i.runDelay.sumNanoseconds)
            #expect(sumFitsBuckets(c.runDelay) && sumFitsBuckets(i.runDelay))
            // The BPF sum of delays matches the kernel's own run_delay for the
            // thread (schedstat), within what the start gate and exit add: the
            // thread samples schedstat when its work ends, and on its way out it
            // can be preempted by the hog once more and wait one more round-robin
            // slice that BPF (reading at the last switch-out) rightly counts.
            if Support.kernelHasSchedInfo {
                let kernelDelay = contended.kernel.runDelayNanoseconds
                #expect(c.runDelay.sumNanoseconds + Self.millisecond >= kernelDelay)
                #expect(c.runDelay.sumNanoseconds <= kernelDelay + Support.roundRobinSliceNanoseconds + 5 * Self.millisecond)
            }
        }

        @Test("migrations are counted as the kernel counts them", .enabled(if: NativeThread.onlineCPUs >= 2))
        func migrations() throws {
            let monitor = try Support.startedMonitor()
            let (kernel, stats, _) = try runTracked(monitor, cpu: 0) {
                for move in 1...6 {
                    NativeThread.pin(toCPU: move % 2)
                    NativeThread.burnCPU(nanoseconds: Self.millisecond)
                }
            }
            #expect(kernel.migrations >= 6)
            #expect(stats.migrations >= kernel.migrations)
            #expect(stats.migrations <= kernel.migrations + 1)
            #expect(stats.lastCPU == 0)
        }

        @Test("an untracked thread is not counted; untrack forgets")
        func untrackedThreads() throws {
            let monitor = try Support.startedMonitor()
            let thread = try #require(NativeThread { NativeThread.sleep(nanoseconds: Self.millisecond) })
            #expect(try monitor.stats(tid: thread.tid) == nil)
            try monitor.track(tid: thread.tid)
            try monitor.track(tid: thread.tid)  // again: keeps the entry
            // Parked at its start gate: nothing to count yet (it may still be
            // on its way into the gate's read, so switches are not checked).
            let parked = try #require(try monitor.stats(tid: thread.tid))
            #expect(parked.wakeups == 0 && parked.runtimeNanoseconds == 0 && parked.runDelay.count == 0)
            thread.release()
            thread.join()
            #expect(try monitor.stats(tid: thread.tid).map { $0.wakeups >= 1 } == true)
            #expect(try monitor.untrack(tid: thread.tid) == true)
            #expect(try monitor.untrack(tid: thread.tid) == false)
            #expect(try monitor.stats(tid: thread.tid) == nil)
        }
    }
}
