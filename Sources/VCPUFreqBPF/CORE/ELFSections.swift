/// The named sections of a 64-bit little-endian ELF file (a BPF object, a
/// vmlinux or a kernel module): enough to find `.BTF`, `.BTF.ext` and a
/// program's instructions. Pure; bounds-checked.
public struct ELFSections: Sendable {
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    public let bytes: [UInt8]
    /// Section name → byte range in `bytes` (SHT_NOBITS sections are absent).
    public let ranges: [String: Range<Int>]

    public init(_ bytes: [UInt8]) throws(ParseError) {
        let reader = LittleEndianReader(bytes)
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else {
            throw ParseError(description: "not an ELF file")
        }
        guard bytes[4] == 2, bytes[5] == 1 else { throw ParseError(description: "not a 64-bit little-endian ELF file") }
        let sectionTable = Int(reader.u64(at: 0x28))
        let entrySize = Int(reader.u16(at: 0x3A))
        let count = Int(reader.u16(at: 0x3C))
        let namesIndex = Int(reader.u16(at: 0x3E))
        guard entrySize >= 64, namesIndex < count, sectionTable + count * entrySize <= bytes.count else {
            throw ParseError(description: "ELF section table beyond the file's \(bytes.count) bytes")
        }
        func header(_ index: Int) -> (name: UInt32, type: UInt32, offset: Int, size: Int) {
            let at = sectionTable + index * entrySize
            return (reader.u32(at: at), reader.u32(at: at + 4), Int(reader.u64(at: at + 0x18)), Int(reader.u64(at: at + 0x20)))
        }
        let names = header(namesIndex)
        guard names.offset + names.size <= bytes.count else { throw ParseError(description: "ELF section names beyond the file") }
        var ranges: [String: Range<Int>] = [:]
        for index in 0..<count {
            let section = header(index)
            let nobits: UInt32 = 8
            guard section.type != nobits, section.offset >= 0, section.size >= 0, section.offset + section.size <= bytes.count
            else { continue }
            let start = names.offset + Int(section.name)
            guard start < names.offset + names.size else { continue }
            let end = bytes[start..<(names.offset + names.size)].firstIndex(of: 0) ?? (names.offset + names.size)
            ranges[String(decoding: bytes[start..<end], as: UTF8.self)] = section.offset..<(section.offset + section.size)
        }
        self.bytes = bytes
        self.ranges = ranges
    }

    public func section(_ name: String) -> ArraySlice<UInt8>? { ranges[name].map { bytes[$0] } }
}
