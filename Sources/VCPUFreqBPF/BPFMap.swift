import Glibc

/// A BPF map by file descriptor: one of a loaded object's maps, or a pinned
/// map opened by path. Element access is by raw bytes whose sizes must be the
/// map's key and value sizes (a mismatch is our bug: precondition).
public final class BPFMap {
    public let name: String
    public let keySize: Int
    public let valueSize: Int
    let fd: Int32
    /// For a map of an object: the object, which owns the fd. Nil: we own it.
    private let owner: BPFObject?

    init(name: String, fd: Int32, keySize: Int, valueSize: Int, owner: BPFObject?) {
        self.name = name
        self.fd = fd
        self.keySize = keySize
        self.valueSize = valueSize
        self.owner = owner
    }

    /// Opens a map pinned in bpffs (bpf_obj_get).
    public static func openPinned(path: String) throws -> BPFMap {
        guard let opened = LibBPF.openPinnedMap(path: path) else {
            throw BPFError.mapOperationFailed(map: path, operation: "open pinned", reason: LibBPF.reason(errno: errno))
        }
        return BPFMap(
            name: opened.name, fd: opened.fd, keySize: opened.keySize, valueSize: opened.valueSize, owner: nil)
    }

    deinit {
        if owner == nil { close(fd) }
    }

    /// The value of `key`, or nil when the map has no such key.
    public func lookup(key: [UInt8]) throws -> [UInt8]? {
        precondition(key.count == keySize, "key of \(key.count) bytes for map \(name) with \(keySize)-byte keys")
        var value = [UInt8](repeating: 0, count: valueSize)
        let code = key.withUnsafeBytes { k in
            value.withUnsafeMutableBytes { v in LibBPF.lookup(fd: fd, key: k.baseAddress!, value: v.baseAddress!) }
        }
        if code == ENOENT { return nil }
        try check(code, "lookup")
        return value
    }

    public func update(key: [UInt8], value: [UInt8]) throws {
        precondition(key.count == keySize && value.count == valueSize, "wrong key or value size for map \(name)")
        let code = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                LibBPF.update(fd: fd, key: k.baseAddress!, value: v.baseAddress!, mode: .any)
            }
        }
        try check(code, "update")
    }

    /// Deletes `key`; returns whether it was there.
    @discardableResult
    public func delete(key: [UInt8]) throws -> Bool {
        precondition(key.count == keySize, "wrong key size for map \(name)")
        let code = key.withUnsafeBytes { LibBPF.delete(fd: fd, key: $0.baseAddress!) }
        if code == ENOENT { return false }
        try check(code, "delete")
        return true
    }

    func check(_ code: Int32, _ operation: String) throws {
        guard code != 0 else { return }
        throw BPFError.mapOperationFailed(map: name, operation: operation, reason: LibBPF.reason(errno: code))
    }
}
