/// An attached program (or struct_ops map). Destroying the link (explicitly
/// or when the last reference goes) detaches it.
public final class BPFLink {
    /// The program's name (its C function name), or the struct_ops map's.
    public let program: String
    /// What it is attached to, e.g. "tp_btf/sched_switch" or "struct_ops sched_ext_ops".
    public let target: String
    private enum Handle {
        case libbpf(OpaquePointer)
        case structOps(LibBPF.StructOpsLink)
    }
    private var handle: Handle?
    /// Keeps the object, and so the program, alive while attached.
    private let object: BPFObject

    init(handle: OpaquePointer, program: String, target: String, object: BPFObject) {
        self.handle = .libbpf(handle)
        self.program = program
        self.target = target
        self.object = object
    }

    init(structOps link: LibBPF.StructOpsLink, map: String, target: String, object: BPFObject) {
        handle = .structOps(link)
        program = map
        self.target = target
        self.object = object
    }

    /// Detaches now; later calls do nothing.
    public func destroy() {
        switch handle {
        case .libbpf(let link): LibBPF.destroyLink(link)
        case .structOps(let link): LibBPF.detachStructOps(link)
        case nil: break
        }
        handle = nil
    }

    public var isAttached: Bool { handle != nil }

    deinit { destroy() }
}
