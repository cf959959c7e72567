/// One CO-RE relocation of a BPF object (`.BTF.ext`, struct
/// bpf_core_relo): libbpf rewrites instruction `instructionOffset` of
/// program section `section` against the running kernel's BTF.
public struct CORERelocation: Sendable, Equatable {
    /// enum bpf_core_relo_kind (include/uapi/linux/bpf.h).
    public enum Kind: UInt32, Sendable {
        case fieldByteOffset = 0, fieldByteSize, fieldExists, fieldSigned, fieldLeftShift, fieldRightShift
        case typeIDLocal, typeIDTarget, typeExists, typeSize, enumValueExists, enumValue, typeMatches

        /// The kinds that name a field (a struct member path).
        public var isField: Bool { rawValue <= Kind.fieldRightShift.rawValue }
    }

    /// The ELF section of the program (`tp_btf/sched_wakeup`).
    public var section: String
    /// Byte offset of the instruction in that section.
    public var instructionOffset: UInt32
    /// Root type, in the object's own BTF.
    public var typeID: UInt32
    /// `0:1:2`: an array index on the root, then member / element indexes.
    public var accessString: String
    public var kind: Kind

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Reads the CO-RE relocation part of `.BTF.ext`; names come from the
    /// object's `.BTF` (`btf`). An object without CO-RE relocations has none.
    public static func parse(btfExt bytes: some Collection<UInt8>, btf: BTF) throws(ParseError) -> [CORERelocation] {
        let data = Array(bytes)
        let reader = LittleEndianReader(data)
        guard data.count >= 24, reader.u16(at: 0) == BTF.magic else {
            throw ParseError(description: "not .BTF.ext: no magic 0xeb9f")
        }
        let headerLength = Int(reader.u32(at: 4))
        // The CO-RE fields follow func_info and line_info in the header (32 bytes).
        guard headerLength >= 32 else { return [] }
        let start = headerLength + Int(reader.u32(at: 24))
        let length = Int(reader.u32(at: 28))
        guard length > 0 else { return [] }
        guard start + length <= data.count, length >= 4 else {
            throw ParseError(description: ".BTF.ext CO-RE records beyond its \(data.count) bytes")
        }
        let recordSize = Int(reader.u32(at: start))
        guard recordSize >= 16 else { throw ParseError(description: ".BTF.ext CO-RE record size \(recordSize) < 16") }
        var relocations: [CORERelocation] = []
        var position = start + 4
        let end = start + length
        while position + 8 <= end {
            let section = btf.string(at: reader.u32(at: position))
            let count = Int(reader.u32(at: position + 4))
            position += 8
            guard position + count * recordSize <= end else {
                throw ParseError(description: ".BTF.ext CO-RE records of \(section) truncated")
            }
            for index in 0..<count {
                let at = position + index * recordSize
                guard let kind = Kind(rawValue: reader.u32(at: at + 12)) else {
                    throw ParseError(description: ".BTF.ext: relocation kind \(reader.u32(at: at + 12)) in \(section) is unknown")
                }
                relocations.append(CORERelocation(
                    section: section, instructionOffset: reader.u32(at: at), typeID: reader.u32(at: at + 4),
                    accessString: btf.string(at: reader.u32(at: at + 8)), kind: kind))
            }
            position += count * recordSize
        }
        return relocations
    }
}
