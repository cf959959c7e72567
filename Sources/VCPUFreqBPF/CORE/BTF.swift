/// BPF Type Format, read in pure Swift: the kernel's (`/sys/kernel/btf/vmlinux`,
/// a module's split BTF in `/sys/kernel/btf/<module>`) and an object's `.BTF`
/// section. Only what the CO-RE audit needs: kinds, names, sizes, members,
/// integer encodings. Layout: include/uapi/linux/btf.h and
/// Documentation/bpf/btf.rst.
public struct BTF: Sendable {
    /// One type. `id` 0 is `void` and is not stored.
    public struct TypeInfo: Sendable, Equatable {
        public var kind: Kind
        public var name: String
        /// STRUCT, UNION, ENUM, ENUM64, INT, FLOAT, DATASEC: byte size.
        public var size: UInt32
        /// PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG, FUNC, VAR,
        /// DECL_TAG: the type referred to. ARRAY: the element type.
        public var referencedType: UInt32
        /// STRUCT and UNION members.
        public var members: [Member]
        /// INT: BTF_INT_SIGNED (1), BTF_INT_CHAR (2), BTF_INT_BOOL (4).
        public var intEncoding: UInt8
        /// ARRAY: element count.
        public var elementCount: UInt32
    }

    public struct Member: Sendable, Equatable {
        public var name: String
        public var type: UInt32
        /// Offset in bits from the start of the struct.
        public var bitOffset: UInt32
        /// Bitfield size in bits; 0 = not a bitfield.
        public var bitfieldSize: UInt32
    }

    /// BTF_KIND_*.
    public enum Kind: UInt8, Sendable {
        case int = 1, pointer, array, `struct`, union, `enum`, forward, typedef, volatile, const, restrict, function,
            functionPrototype, variable, dataSection, float, declarationTag, typeTag, enum64
    }

    /// Why bytes are not BTF; the message names the offset.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// The base this split BTF extends (a module's BTF extends vmlinux's).
    public let base: [TypeInfo]
    /// This BTF's own types; ids continue after `base` (id = base.count + 1 + index).
    public let types: [TypeInfo]

    public static let magic: UInt16 = 0xEB9F

    /// Parses raw BTF (`.BTF` section, or /sys/kernel/btf/*). A module's
    /// split BTF needs its `base` (vmlinux): its type ids and string
    /// offsets continue the base's.
    public init(_ bytes: some Collection<UInt8>, base: BTF? = nil) throws(ParseError) {
        let data = Array(bytes)
        let reader = LittleEndianReader(data)
        guard data.count >= 24, reader.u16(at: 0) == Self.magic else {
            throw ParseError(description: "not BTF: no magic 0xeb9f at offset 0")
        }
        guard data[2] == 1 else { throw ParseError(description: "BTF version \(data[2]), not 1") }
        let headerLength = Int(reader.u32(at: 4))
        let typeOffset = headerLength + Int(reader.u32(at: 8))
        let typeLength = Int(reader.u32(at: 12))
        let stringOffset = headerLength + Int(reader.u32(at: 16))
        let stringLength = Int(reader.u32(at: 20))
        guard headerLength >= 24, typeOffset + typeLength <= data.count, stringOffset + stringLength <= data.count else {
            throw ParseError(description: "BTF header points beyond its \(data.count) bytes")
        }
        let baseTypes = base.map { $0.base + $0.types } ?? []
        let baseStrings = base?.stringTable ?? []
        let strings = Array(data[stringOffset..<(stringOffset + stringLength)])
        let table = baseStrings + strings
        func name(_ offset: UInt32) -> String {
            let start = Int(offset)
            guard start < table.count else { return "" }
            let end = table[start...].firstIndex(of: 0) ?? table.count
            return String(decoding: table[start..<end], as: UTF8.self)
        }
        var parsed: [TypeInfo] = []
        var position = typeOffset
        let end = typeOffset + typeLength
        while position < end {
            guard position + 12 <= end else { throw ParseError(description: "BTF type truncated at offset \(position)") }
            let nameOffset = reader.u32(at: position)
            let info = reader.u32(at: position + 4)
            let sizeOrType = reader.u32(at: position + 8)
            position += 12
            let vlen = Int(info & 0xFFFF)
            let kindFlag = info >> 31 != 0
            guard let kind = Kind(rawValue: UInt8((info >> 24) & 0x1F)) else {
                throw ParseError(description: "BTF type \(baseTypes.count + parsed.count + 1) at offset \(position - 12) has unknown kind \((info >> 24) & 0x1F)")
            }
            var type = TypeInfo(
                kind: kind, name: name(nameOffset), size: 0, referencedType: 0, members: [], intEncoding: 0, elementCount: 0)
            var extra = 0
            switch kind {
            case .int:
                type.size = sizeOrType
                extra = 4
                guard position + 4 <= end else { break }
                type.intEncoding = UInt8((reader.u32(at: position) >> 24) & 0x0F)
            case .pointer, .typedef, .volatile, .const, .restrict, .function, .typeTag:
                type.referencedType = sizeOrType
            case .variable, .declarationTag:
                type.referencedType = sizeOrType
                extra = 4
            case .array:
                extra = 12
                guard position + 12 <= end else { break }
                type.referencedType = reader.u32(at: position)
                type.elementCount = reader.u32(at: position + 8)
            case .struct, .union:
                type.size = sizeOrType
                extra = 12 * vlen
                guard position + extra <= end else { break }
                type.members = (0..<vlen).map { index in
                    let at = position + index * 12
                    let offset = reader.u32(at: at + 8)
                    return Member(
                        name: name(reader.u32(at: at)), type: reader.u32(at: at + 4),
                        bitOffset: kindFlag ? offset & 0xFF_FFFF : offset, bitfieldSize: kindFlag ? offset >> 24 : 0)
                }
            case .enum: type.size = sizeOrType; extra = 8 * vlen
            case .enum64: type.size = sizeOrType; extra = 12 * vlen
            case .forward: break
            case .functionPrototype: extra = 8 * vlen
            case .dataSection: type.size = sizeOrType; extra = 12 * vlen
            case .float: type.size = sizeOrType
            }
            guard position + extra <= end else {
                throw ParseError(description: "BTF type \(baseTypes.count + parsed.count + 1) (\(kind)) truncated at offset \(position)")
            }
            position += extra
            parsed.append(type)
        }
        self.base = baseTypes
        self.types = parsed
        stringTable = table
    }

    /// Base and own strings, for a split BTF built on this one.
    let stringTable: [UInt8]

    /// The NUL-terminated string at `offset` of the string table (base strings first).
    public func string(at offset: UInt32) -> String {
        let start = Int(offset)
        guard start < stringTable.count else { return "" }
        let end = stringTable[start...].firstIndex(of: 0) ?? stringTable.count
        return String(decoding: stringTable[start..<end], as: UTF8.self)
    }

    /// The type with `id`; nil for 0 (void) and ids beyond the table.
    public func type(_ id: UInt32) -> TypeInfo? {
        let index = Int(id) - 1
        guard index >= 0 else { return nil }
        if index < base.count { return base[index] }
        let own = index - base.count
        return own < types.count ? types[own] : nil
    }

    /// Calls `body` with every (id, type), base first.
    public func forEach(_ body: (UInt32, TypeInfo) -> Void) {
        for (index, type) in base.enumerated() { body(UInt32(index + 1), type) }
        for (index, type) in types.enumerated() { body(UInt32(base.count + index + 1), type) }
    }

    /// Every id whose type has this kind and name (base first).
    public func ids(named name: String, kind: Kind) -> [UInt32] {
        var found: [UInt32] = []
        for (index, type) in base.enumerated() where type.kind == kind && type.name == name { found.append(UInt32(index + 1)) }
        for (index, type) in types.enumerated() where type.kind == kind && type.name == name {
            found.append(UInt32(base.count + index + 1))
        }
        return found
    }

    /// `id` with typedefs and qualifiers (const, volatile, restrict, type tags) stripped.
    public func resolved(_ id: UInt32) -> UInt32 {
        var id = id
        for _ in 0..<64 {
            guard let type = type(id) else { return id }
            switch type.kind {
            case .typedef, .volatile, .const, .restrict, .typeTag: id = type.referencedType
            default: return id
            }
        }
        return id
    }

    /// Bytes a value of this type takes (pointers: 8; arrays: count × element).
    public func byteSize(_ id: UInt32) -> UInt32? {
        let id = resolved(id)
        guard let type = type(id) else { return nil }
        switch type.kind {
        case .int, .struct, .union, .enum, .enum64, .float: return type.size
        case .pointer: return 8
        case .array: return byteSize(type.referencedType).map { $0 * type.elementCount }
        default: return nil
        }
    }

    /// A short C-like description: `u8 (unsigned, 1 byte)`, `int (signed, 4 bytes)`, `struct sched_entity`.
    public func describe(_ id: UInt32) -> String {
        guard let named = type(id) else { return "void" }
        let resolvedID = resolved(id)
        guard let type = type(resolvedID) else { return named.name }
        let spelled = named.name.isEmpty ? type.name : named.name
        switch type.kind {
        case .int:
            let sign = type.intEncoding & 1 != 0 ? "signed" : "unsigned"
            return "\(spelled) (\(sign), \(type.size) byte\(type.size == 1 ? "" : "s"))"
        case .pointer: return "pointer"
        case .struct: return "struct \(type.name)"
        case .union: return "union \(type.name)"
        case .enum, .enum64: return "enum \(type.name) (\(type.size) bytes)"
        case .array: return "array of \(type.elementCount) × \(describe(type.referencedType))"
        default: return spelled.isEmpty ? "\(type.kind)" : spelled
        }
    }
}

/// Little-endian fixed-width reads from a byte array (BTF, ELF and BPF
/// instructions are little-endian on every host we load on). Reads past the
/// end return 0; callers bound-check first.
struct LittleEndianReader {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func u8(at offset: Int) -> UInt8 { offset >= 0 && offset < bytes.count ? bytes[offset] : 0 }
    func u16(at offset: Int) -> UInt16 { UInt16(u8(at: offset)) | UInt16(u8(at: offset + 1)) << 8 }
    func u32(at offset: Int) -> UInt32 { UInt32(u16(at: offset)) | UInt32(u16(at: offset + 2)) << 16 }
    func u64(at offset: Int) -> UInt64 { UInt64(u32(at: offset)) | UInt64(u32(at: offset + 4)) << 32 }
}
