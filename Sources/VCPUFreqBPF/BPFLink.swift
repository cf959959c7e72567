/// An attached program. Destroying the link (explicitly or when the last
/// reference goes) detaches the program.
public final class BPFLink {
    /// The program's name (its C function name).
    public let program: String
    /// What it is attached to, e.g. "tp_btf/sched_switch".
    public let target: String
    private var handle: OpaquePointer?
    /// Keeps the object, and so the program, alive while attached.
    private let object: BPFObject

    init(handle: OpaquePointer, program: String, target: String, object: BPFObject) {
        self.handle = handle
        self.program = program
        self.target = target
        self.object = object
    }

    /// Detaches now; later calls do nothing.
    public func destroy() {
        if let handle { LibBPF.destroyLink(handle) }
        handle = nil
    }

    public var isAttached: Bool { handle != nil }

    deinit { destroy() }
}
