/// A BPF ELF object (programs and maps) through libbpf: open, adjust
/// (autoload, pin paths, map sizes), load, attach. Owns the libbpf handle and
/// closes it in deinit, which also closes its maps and unloads its programs
/// (links keep their programs attached until destroyed).
public final class BPFObject {
    /// The object name libbpf reports in its messages.
    public let name: String
    /// A program of the object: its C function name and its ELF section
    /// (which says how it attaches: "tp_btf/sched_switch", "tracepoint/kvm/kvm_mmio").
    public struct Program: Equatable, Sendable {
        public var name: String
        public var section: String
    }

    private let handle: OpaquePointer
    private let programHandles: [(handle: OpaquePointer, program: Program)]
    /// Receives the verifier log of a failing load (libbpf keeps the pointer).
    private let logBuffer: UnsafeMutablePointer<CChar>
    /// 256 KiB holds the level-1 verifier log of a failing program of this
    /// size; a longer log is cut by the kernel and we only show its tail.
    static let logBufferSize = 256 * 1024

    public private(set) var isLoaded = false

    /// Parses an object (nothing reaches the kernel yet).
    /// - Throws: `BPFError.invalidObject` when `bytes` is not a BPF ELF object.
    public init(bytes: [UInt8], name: String) throws {
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: Self.logBufferSize)
        buffer.initialize(repeating: 0, count: Self.logBufferSize)
        let opened: OpaquePointer
        do {
            opened = try bytes.withUnsafeBytes { raw in
                try LibBPF.openObject(bytes: raw, name: name, logBuffer: buffer, logSize: Self.logBufferSize)
            }
        } catch {
            buffer.deallocate()
            throw error
        }
        self.name = name
        logBuffer = buffer
        handle = opened
        programHandles = LibBPF.programs(of: handle).map {
            ($0.handle, Program(name: $0.name, section: $0.section))
        }
    }

    deinit {
        LibBPF.closeObject(handle)
        logBuffer.deallocate()
    }

    public var programs: [Program] { programHandles.map(\.program) }

    private func programHandle(_ name: String) throws -> OpaquePointer {
        guard let entry = programHandles.first(where: { $0.program.name == name }) else {
            throw BPFError.notFound(kind: "program", name: name)
        }
        return entry.handle
    }

    private func mapHandle(_ name: String) throws -> OpaquePointer {
        guard let map = LibBPF.findMap(handle, name: name) else { throw BPFError.notFound(kind: "map", name: name) }
        return map
    }

    private func requireLoaded(_ loaded: Bool, _ operation: String) throws {
        guard isLoaded != loaded else { return }
        throw BPFError.wrongState(
            operation: operation, reason: loaded ? "object \(name) is not loaded yet" : "object \(name) is already loaded")
    }

    // MARK: - Before load

    /// Whether `load()` loads this program (default: yes). A program whose
    /// hook does not exist on this kernel must be switched off before load
    /// when its CO-RE relocations need types that only exist with the hook.
    public func setAutoload(_ enabled: Bool, program: String) throws {
        try requireLoaded(false, "setAutoload(\(program))")
        let code = LibBPF.setAutoload(try programHandle(program), enabled)
        guard code == 0 else {
            throw BPFError.loadFailed(object: name, program: program, reason: LibBPF.reason(errno: code), verifierLog: nil)
        }
    }

    /// Pins `map` at `path` on load; an existing compatible pinned map there is
    /// reused instead of creating one (so its contents survive a restart).
    public func setPinPath(_ path: String?, map: String) throws {
        try requireLoaded(false, "setPinPath(\(map))")
        let code = LibBPF.setPinPath(try mapHandle(map), path)
        guard code == 0 else {
            throw BPFError.mapOperationFailed(map: map, operation: "set pin path", reason: LibBPF.reason(errno: code))
        }
    }

    /// Adds `flags` (`BPF_F_*`) to the map's creation flags.
    func addMapFlags(_ flags: UInt32, map: String) throws {
        try requireLoaded(false, "addMapFlags(\(map))")
        let handle = try mapHandle(map)
        let code = LibBPF.setMapFlags(handle, LibBPF.mapFlags(handle) | flags)
        guard code == 0 else {
            throw BPFError.mapOperationFailed(map: map, operation: "set map flags", reason: LibBPF.reason(errno: code))
        }
    }

    /// Creates the struct_ops map `map` with `BPF_F_LINK`: registered through
    /// a link, which the kernel closes (unregistering it) when the process dies.
    public func registerThroughLink(structOps map: String) throws {
        try addMapFlags(LibBPF.mapFlagLink, map: map)
    }

    /// Loads `program` sleepable (a struct_ops member the kernel allows to sleep).
    public func setSleepable(program: String) throws {
        try requireLoaded(false, "setSleepable(\(program))")
        let code = LibBPF.setSleepable(try programHandle(program))
        guard code == 0 else {
            throw BPFError.loadFailed(object: name, program: program, reason: LibBPF.reason(errno: code), verifierLog: nil)
        }
    }

    public func setMaxEntries(_ count: UInt32, map: String) throws {
        try requireLoaded(false, "setMaxEntries(\(map))")
        let code = LibBPF.setMaxEntries(try mapHandle(map), count)
        guard code == 0 else {
            throw BPFError.mapOperationFailed(map: map, operation: "set max entries", reason: LibBPF.reason(errno: code))
        }
    }

    // MARK: - Load

    /// Creates the maps (or reuses pinned ones) and loads the programs.
    /// - Throws: `BPFError.permissionDenied` without the privileges,
    ///   `BPFError.loadFailed` (with the verifier log's tail) when the kernel
    ///   refuses a program or map.
    public func load() throws {
        try requireLoaded(false, "load")
        try LibBPF.loadObject(handle, name: name, logBuffer: logBuffer)
        isLoaded = true
    }

    // MARK: - After load

    /// Attaches `program` where its section says.
    /// - Throws: `BPFError.attachFailed` with the errno's reason.
    public func attach(program: String) throws -> BPFLink {
        try requireLoaded(true, "attach(\(program))")
        let programHandle = try programHandle(program)
        let section = programs.first { $0.name == program }?.section ?? "?"
        let (link, code) = LibBPF.attach(programHandle)
        guard let link else { throw BPFError.attachFailed(program: program, target: section, reason: LibBPF.reason(errno: code)) }
        return BPFLink(handle: link, program: program, target: section, object: self)
    }

    /// Attaches a tracepoint program to `category`/`name`, whatever its section says.
    public func attachTracepoint(program: String, category: String, name tracepoint: String) throws -> BPFLink {
        try requireLoaded(true, "attach(\(program))")
        let target = "tracepoint/\(category)/\(tracepoint)"
        let (link, code) = LibBPF.attachTracepoint(try programHandle(program), category: category, name: tracepoint)
        guard let link else { throw BPFError.attachFailed(program: program, target: target, reason: LibBPF.reason(errno: code)) }
        return BPFLink(handle: link, program: program, target: target, object: self)
    }

    /// Registers the struct_ops map `map` (made with `registerThroughLink`)
    /// with its kernel subsystem. For sched_ext this is where ops.init()
    /// runs: the errno says why the kernel refused (EBUSY: another scheduler).
    /// - Throws: `BPFError.attachFailed` with the errno's reason.
    public func attachStructOps(map mapName: String) throws -> BPFLink {
        try requireLoaded(true, "attachStructOps(\(mapName))")
        let (link, code) = LibBPF.attachStructOps(try mapHandle(mapName))
        let target = "struct_ops \(mapName)"
        guard let link else { throw BPFError.attachFailed(program: mapName, target: target, reason: LibBPF.reason(errno: code)) }
        return BPFLink(structOps: link, map: mapName, target: target, object: self)
    }

    /// A loaded map of this object; valid while the object lives.
    public func map(named mapName: String) throws -> BPFMap {
        try requireLoaded(true, "map(\(mapName))")
        let map = try mapHandle(mapName)
        return BPFMap(
            name: mapName, fd: LibBPF.mapFD(map), keySize: LibBPF.mapKeySize(map),
            valueSize: LibBPF.mapValueSize(map), owner: self)
    }

    /// Removes the pin of `map` (the map lives on while this object holds it).
    public func unpin(map mapName: String) throws {
        let code = LibBPF.unpin(try mapHandle(mapName))
        guard code == 0 else {
            throw BPFError.mapOperationFailed(map: mapName, operation: "unpin", reason: LibBPF.reason(errno: code))
        }
    }

    /// Whether this object's BTF names a function `name`: one of its
    /// programs, or a kernel function (kfunc) it calls.
    public func btfFunctionExists(_ name: String) -> Bool {
        LibBPF.btfHasFunction(handle, name: name)
    }

    /// The layout of a struct as the BPF compiler emitted it into this
    /// object's BTF, or nil when the object has no such struct.
    public func btfLayout(ofStruct structName: String) -> StructLayout? {
        LibBPF.btfLayout(of: handle, structName: structName)
    }
}
