import Glibc
import Testing
import VCPUFreqLinux

@Suite struct AnnotatedMutexTests {
    struct Refused: Error, Equatable { var value: Int }

    /// Two threads adding under the lock lose no update, and the lock hands
    /// the state back as `inout`.
    @Test func concurrentUpdatesUnderTheLockAreNeverLost() {
        let counter = AnnotatedMutex<Int>(0)
        let rounds = 50_000
        let workers = (0..<2).map { _ in
            ScratchWorker { for _ in 0..<rounds { counter.withLock { $0 += 1 } } }
        }
        for worker in workers { worker.join() }
        #expect(counter.withLock { $0 } == 2 * rounds)
    }

    /// A typed error thrown under the lock comes out as itself, the state
    /// change made before it stays, and the lock is free afterwards.
    @Test func aTypedErrorLeavesTheLockFree() {
        let state = AnnotatedMutex<[Int]>([])
        let outcome = Result { () throws(Refused) in
            try state.withLock { (values: inout [Int]) throws(Refused) in
                values.append(1)
                throw Refused(value: 7)
            }
        }
        guard case .failure(let error) = outcome else { Issue.record("no error came out"); return }
        #expect(error == Refused(value: 7))
        #expect(state.withLock { values in values.append(2); return values } == [1, 2])
    }

    /// The annotations are there exactly when the TSan runtime is.
    @Test func annotationsFollowTheRuntime() {
        let tsan = dlsym(nil, "__tsan_init") != nil
        #expect(ThreadSanitizerAnnotations.active == tsan)
        #expect((ThreadSanitizerAnnotations.release != nil) == tsan)
    }
}

/// A pthread running `body`, joined by `join()`.
final class ScratchWorker: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: () -> Void

    init(_ body: @escaping () -> Void) {
        self.body = body
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            let worker = Unmanaged<ScratchWorker>.fromOpaque(raw!).takeRetainedValue()
            worker.body()
            return nil
        }, context)
    }

    func join() { pthread_join(thread, nil) }
}
