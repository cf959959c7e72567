#if VCPUFREQ_SYSCALL_HOOKS
import SystemPackage

/// Debug builds only: records the syscalls made by this module's wrappers and
/// lets a test fail (or fake) chosen ones, so error paths (EPERM, ESRCH,
/// EINTR, EOPNOTSUPP) and exact arguments are tested without root or a
/// kernel feature. Release builds compile every reference to it away.
///
/// The hook is bound to the current task (`withHook`), so tests running in
/// parallel never see each other's calls. Calls made on other threads (for
/// example a thread the test spawned) are not hooked.
public final class SyscallHook: @unchecked Sendable {
    /// One syscall as the wrapper saw it.
    public struct Call: Equatable, Sendable, CustomStringConvertible {
        /// The syscall's name (`sched_setattr`, `setpriority`, ...).
        public var name: String
        /// Integer arguments in call order (TIDs, flags, counts, descriptors).
        public var arguments: [Int64]
        /// The memory the call passes to the kernel, when it is a struct
        /// (`struct sched_attr`) or a list (affinity CPU ids as Int32 LE).
        public var bytes: [UInt8]

        public var description: String { "\(name)(\(arguments.map(String.init).joined(separator: ", ")))" }

        /// The bytes as UTF-8 text: the path of an `open`.
        public var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// What happens to a matching call.
    public enum Action: Sendable {
        /// Let the kernel do it (the call is still recorded).
        case passThrough
        /// Do not call the kernel; report success with this return value.
        case succeed(returning: Int = 0)
        /// Do not call the kernel; fail with this errno.
        case fail(Errno)
    }

    private struct Rule {
        var name: String
        var remaining: Int
        var matches: (@Sendable (Call) -> Bool)?
        var action: Action
    }

    public private(set) var calls: [Call] = []
    private var rules: [Rule] = []

    public init() {}

    /// Applies `action` to the next `times` calls of `name` (rules are
    /// consulted in the order they were added; a used-up rule is dropped).
    public func on(_ name: String, times: Int = Int.max, _ action: Action) {
        rules.append(Rule(name: name, remaining: times, matches: nil, action: action))
    }

    /// Applies `action` to the calls of `name` for which `matches` is true
    /// (`{ $0.text.hasSuffix("/related_cpus") }` fails the open of one file).
    public func on(_ name: String, times: Int = Int.max, where matches: @escaping @Sendable (Call) -> Bool, _ action: Action) {
        rules.append(Rule(name: name, remaining: times, matches: matches, action: action))
    }

    /// The recorded calls with this name.
    public func calls(named name: String) -> [Call] { calls.filter { $0.name == name } }

    public func reset() { calls.removeAll() }

    func record(_ call: Call) -> Action {
        calls.append(call)
        guard let index = rules.firstIndex(where: { $0.name == call.name && ($0.matches?(call) ?? true) }) else {
            return .passThrough
        }
        let action = rules[index].action
        rules[index].remaining -= 1
        if rules[index].remaining <= 0 { rules.remove(at: index) }
        return action
    }

    @TaskLocal static var current: SyscallHook?

    /// Runs `body` with `hook` receiving this task's syscalls.
    public static func withHook<R>(_ hook: SyscallHook, _ body: () throws -> R) rethrows -> R {
        try $current.withValue(hook, operation: body)
    }

    /// Runs `body` with `hook` receiving this task's syscalls.
    public static func withHook<R>(
        _ hook: SyscallHook, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> R
    ) async rethrows -> R {
        try await $current.withValue(hook, operation: body, isolation: isolation)
    }
}
#endif
