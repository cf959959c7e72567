/// Why a BPF operation failed. Each case's doc comment is its message; the
/// `description` spells it out with the details, ready for a log line or a
/// CLI error.
public enum BPFError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The BPF object is not a valid BPF ELF file (corrupt or truncated
    /// object, or one this libbpf cannot parse).
    case invalidObject(object: String, reason: String)

    /// Loading BPF programs needs root, or CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN
    /// on kernels before 5.8); this process has neither. `operation` names the
    /// part the kernel refused first (a map or a program).
    case permissionDenied(operation: String, reason: String)

    /// The kernel (usually its verifier) refused a program or a map.
    /// `program` is the program or map libbpf named, nil when it named none;
    /// `verifierLog` is the tail of the verifier log when there is one.
    case loadFailed(object: String, program: String?, reason: String, verifierLog: String?)

    /// A program could not be attached to its hook (missing tracepoint,
    /// tracefs not mounted, no BTF for the target).
    case attachFailed(program: String, target: String, reason: String)

    /// The object has no program or map of that name: our bug, or an object
    /// built from other sources.
    case notFound(kind: String, name: String)

    /// The object must be loaded (or not yet loaded) for this operation.
    case wrongState(operation: String, reason: String)

    /// A map operation (lookup, update, delete, pin, open pinned) failed.
    case mapOperationFailed(map: String, operation: String, reason: String)

    /// A file system the programs need (tracefs, bpffs) is not mounted and
    /// mounting it failed.
    case mountFailed(fileSystem: String, path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidObject(let object, let reason):
            return "BPF object \(object) is not a valid BPF ELF object: \(reason)"
        case .permissionDenied(let operation, let reason):
            return "loading BPF programs needs root, or CAP_BPF and CAP_PERFMON: \(operation): \(reason)"
        case .loadFailed(let object, let program, let reason, let log):
            var text = "BPF object \(object): the kernel refused \(program.map { "'\($0)'" } ?? "the object"): \(reason)"
            if let log, !log.isEmpty { text += "\nverifier log (tail):\n\(log)" }
            return text
        case .attachFailed(let program, let target, let reason):
            return "BPF program '\(program)' could not be attached to \(target): \(reason)"
        case .notFound(let kind, let name):
            return "the BPF object has no \(kind) named '\(name)'"
        case .wrongState(let operation, let reason):
            return "\(operation): \(reason)"
        case .mapOperationFailed(let map, let operation, let reason):
            return "BPF map '\(map)': \(operation) failed: \(reason)"
        case .mountFailed(let fileSystem, let path, let reason):
            return "\(fileSystem) is not mounted at \(path) and mounting it failed: \(reason)"
        }
    }
}
