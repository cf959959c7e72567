import Glibc
import Synchronization

/// `Synchronization.Mutex` that ThreadSanitizer can see. Swift 6.3's Mutex
/// on Linux locks with atomics and futex(2) inside the uninstrumented
/// Synchronization library, so under `--sanitize=thread` every access it
/// guards is reported as a race (two threads adding 1 under the lock 10⁵
/// times each: the sum is right and TSan reports an access race; docs/fuzzing.md).
/// This wraps one and, only when the TSan runtime is present, tells it what
/// the lock does (`__tsan_acquire` after locking, `__tsan_release` before
/// unlocking, on this object's address): the same happens-before edges a
/// pthread mutex gets from TSan's interceptors. Without TSan it is the
/// Mutex plus one never-taken branch per side.
public final class AnnotatedMutex<Value: ~Copyable>: Sendable {
    private let mutex: Mutex<Value>

    public init(_ initialValue: consuming sending Value) {
        mutex = Mutex(initialValue)
    }

    /// `Mutex.withLock`: `body` runs with the lock held.
    public func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        let address = Unmanaged.passUnretained(self).toOpaque()
        return try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            ThreadSanitizerAnnotations.acquire?(address)
            defer { ThreadSanitizerAnnotations.release?(address) }
            return try body(&value)
        }
    }
}

/// ThreadSanitizer's public annotation interface (sanitizer/tsan_interface.h),
/// found at run time: nil unless this process runs under TSan.
public enum ThreadSanitizerAnnotations {
    public typealias Annotation = @convention(c) (UnsafeMutableRawPointer?) -> Void

    public static let acquire: Annotation? = function("__tsan_acquire")
    public static let release: Annotation? = function("__tsan_release")

    /// Whether this process runs under ThreadSanitizer.
    public static var active: Bool { acquire != nil }

    private static func function(_ name: String) -> Annotation? {
        dlsym(nil, name).map { unsafeBitCast($0, to: Annotation.self) }
    }
}
