/// Checks every CO-RE field read of a BPF object against a kernel's BTF the
/// way libbpf's relocation does (tools/lib/bpf/relo_core.c), before any
/// load: the field must exist (or its reads be guarded by
/// `bpf_core_field_exists`, which makes them dead code the verifier drops),
/// its type must be compatible, and a load whose size differs between our
/// header and the kernel is resized only for unsigned integers and
/// pointers — a signed field of another size is refused ("accesses field
/// incorrectly"), the trap `task_struct.on_cpu` (int until 6.18, u8 in 7.3)
/// set for a header that declared it `int`.
public enum COREAudit {
    public enum Verdict: String, Codable, Sendable, Comparable {
        /// Same kind and size: libbpf only rewrites the offset.
        case same
        /// Size differs, both unsigned integers or pointers: libbpf resizes the load.
        case resized
        /// The kernel lacks the field and every read is behind `bpf_core_field_exists`.
        case absentGuarded = "absent-guarded"
        /// libbpf poisons the instruction and the kernel refuses the program.
        case refused

        private var rank: Int {
            switch self {
            case .same: return 0
            case .resized: return 1
            case .absentGuarded: return 2
            case .refused: return 3
            }
        }
        public static func < (lhs: Verdict, rhs: Verdict) -> Bool { lhs.rank < rhs.rank }
    }

    /// One field the programs read, with the worst verdict over its reads.
    public struct Finding: Codable, Sendable, Equatable {
        /// `task_struct.on_cpu`.
        public var field: String
        /// Program sections that read it.
        public var programs: [String]
        /// The type our header declares: `int (signed, 4 bytes)`.
        public var local: String
        /// The kernel's: `u8 (unsigned, 1 byte)`, or `missing`.
        public var kernel: String
        public var verdict: Verdict
        /// Why, for `refused` (and `resized`).
        public var reason: String?
    }

    public struct AuditError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Audits `object` (an ELF BPF object with `.BTF` and `.BTF.ext`)
    /// against `kernel`. Relocations of types the kernel does not have at all
    /// (KVM tracepoint records without the kvm module's BTF) are skipped:
    /// the loader switches those programs off before loading.
    public static func audit(object: [UInt8], kernel: BTF) throws(AuditError) -> [Finding] {
        let elf: ELFSections
        let local: BTF
        let relocations: [CORERelocation]
        do {
            elf = try ELFSections(object)
            guard let btfSection = elf.section(".BTF"), let extSection = elf.section(".BTF.ext") else {
                throw AuditError(description: "the object has no .BTF or .BTF.ext section (not compiled with -g?)")
            }
            local = try BTF(btfSection)
            relocations = try CORERelocation.parse(btfExt: extSection, btf: local)
        } catch let error as AuditError {
            throw error
        } catch {
            throw AuditError(description: "\(error)")
        }
        // Fields some relocation only tests for existence: reads of those are guarded.
        var guarded = Set<String>()
        var accesses: [(CORERelocation, LocalAccess)] = []
        for relocation in relocations where relocation.kind.isField {
            guard let access = LocalAccess(relocation, in: local) else { continue }
            if relocation.kind == .fieldExists { guarded.insert(access.path) }
            accesses.append((relocation, access))
        }
        // One pass over the kernel's types for every root the object names.
        let roots = Set(accesses.map { "\($0.1.rootKind.rawValue) \($0.1.rootName)" })
        var candidatesByRoot: [String: [UInt32]] = [:]
        kernel.forEach { id, type in
            guard type.kind == .struct || type.kind == .union else { return }
            let key = "\(type.kind.rawValue) \(type.name)"
            if roots.contains(key) { candidatesByRoot[key, default: []].append(id) }
        }
        var findings: [String: Finding] = [:]
        var order: [String] = []
        for (relocation, access) in accesses where relocation.kind != .fieldExists {
            let candidates = candidatesByRoot["\(access.rootKind.rawValue) \(access.rootName)"] ?? []
            guard !candidates.isEmpty else { continue }  // a program for a hook this kernel lacks
            var finding = Finding(
                field: access.path, programs: [relocation.section], local: local.describe(access.fieldType),
                kernel: "missing", verdict: .refused, reason: nil)
            if let target = candidates.lazy.compactMap({ access.match(in: kernel, root: $0) }).first {
                finding.kernel = kernel.describe(target)
                (finding.verdict, finding.reason) = judge(
                    relocation, access: access, local: local, target: target, kernel: kernel, elf: elf)
            } else if guarded.contains(access.path) {
                finding.verdict = .absentGuarded
            } else {
                finding.reason = "the kernel has no \(access.path) and no bpf_core_field_exists guards the read"
            }
            if var known = findings[access.path] {
                if !known.programs.contains(relocation.section) { known.programs.append(relocation.section) }
                if finding.verdict > known.verdict {
                    known.verdict = finding.verdict
                    known.reason = finding.reason
                }
                findings[access.path] = known
            } else {
                findings[access.path] = finding
                order.append(access.path)
            }
        }
        return order.compactMap { findings[$0] }
    }

    /// libbpf's rules for one relocated instruction.
    static func judge(
        _ relocation: CORERelocation, access: LocalAccess, local: BTF, target: UInt32, kernel: BTF, elf: ELFSections
    ) -> (Verdict, String?) {
        let localID = local.resolved(access.fieldType)
        let targetID = kernel.resolved(target)
        guard let localType = local.type(localID), let targetType = kernel.type(targetID) else {
            return (.refused, "type of \(access.path) not found")
        }
        let composite: Set<BTF.Kind> = [.struct, .union]
        let compatible: Bool
        if composite.contains(localType.kind) && composite.contains(targetType.kind) {
            compatible = true
        } else if localType.kind != targetType.kind {
            compatible = false
        } else {
            compatible = [.int, .pointer, .float, .array, .enum, .enum64].contains(localType.kind)
        }
        guard compatible else {
            return (.refused, "\(access.path) is \(local.describe(localID)) here but \(kernel.describe(targetID)) in the kernel: incompatible kinds")
        }
        let localSize = local.byteSize(localID) ?? 0
        let targetSize = kernel.byteSize(targetID) ?? 0
        guard relocation.kind == .fieldByteOffset, localSize != targetSize else { return (.same, nil) }
        // Only a load is resized; an offset used for an address is not.
        guard let instruction = loadSize(in: elf, section: relocation.section, at: relocation.instructionOffset) else {
            return (.same, nil)
        }
        guard instruction == localSize else {
            return (.refused, "the load of \(access.path) is \(instruction) bytes, the field \(localSize): libbpf refuses (unexpected mem size)")
        }
        let bothPointers = localType.kind == .pointer && targetType.kind == .pointer
        let bothUnsigned = localType.kind == .int && targetType.kind == .int
            && localType.intEncoding & 1 == 0 && targetType.intEncoding & 1 == 0
        if bothPointers || bothUnsigned {
            return (.resized, "\(localSize)-byte load resized to \(targetSize) bytes (unsigned: zero-extension keeps the value)")
        }
        return (.refused,
            "\(access.path) is \(targetSize) byte(s) in the kernel, \(localSize) in our header, and signed: libbpf resizes loads of unsigned integers and pointers only (\"accesses field incorrectly\")")
    }

    /// The size of the memory load (BPF_LDX | BPF_MEM) at `offset` of a program section; nil when it is no load.
    static func loadSize(in elf: ELFSections, section: String, at offset: UInt32) -> UInt32? {
        guard let code = elf.section(section), Int(offset) + 8 <= code.count else { return nil }
        let opcode = code[code.startIndex + Int(offset)]
        guard opcode & 0x07 == 0x01, opcode & 0xE0 == 0x60 else { return nil }
        switch opcode & 0x18 {
        case 0x00: return 4
        case 0x08: return 2
        case 0x10: return 1
        default: return 8
        }
    }

    /// A field access of the object, as its own BTF spells it.
    struct LocalAccess {
        var rootName: String
        var rootKind: BTF.Kind
        /// Member names from the root, anonymous containers left out.
        var names: [String]
        /// `task_struct.se.sum_exec_runtime`.
        var path: String
        /// The final member's type id (object BTF).
        var fieldType: UInt32

        init?(_ relocation: CORERelocation, in btf: BTF) {
            let rootID = btf.resolved(relocation.typeID)
            guard let root = btf.type(rootID), root.kind == .struct || root.kind == .union else { return nil }
            let indexes = relocation.accessString.split(separator: ":").compactMap { Int($0) }
            guard indexes.count >= 2 else { return nil }
            // libbpf ignores a ___flavor suffix when matching names.
            rootName = root.name.components(separatedBy: "___").first ?? root.name
            rootKind = root.kind
            names = []
            var current = rootID
            var spelled = [rootName]
            for index in indexes.dropFirst() {
                guard let type = btf.type(btf.resolved(current)) else { return nil }
                switch type.kind {
                case .struct, .union:
                    guard index < type.members.count else { return nil }
                    let member = type.members[index]
                    if !member.name.isEmpty {
                        names.append(member.name)
                        spelled.append(member.name)
                    }
                    current = member.type
                case .array:
                    spelled[spelled.count - 1] += "[\(index)]"
                    current = type.referencedType
                default:
                    return nil
                }
            }
            path = spelled.joined(separator: ".")
            fieldType = current
        }

        /// The type of the same member path in `kernel` from struct `root`,
        /// looking through anonymous structs and unions as libbpf does.
        func match(in kernel: BTF, root: UInt32) -> UInt32? {
            var current = root
            for name in names {
                guard let found = Self.member(named: name, in: current, of: kernel, depth: 0) else { return nil }
                current = found
            }
            return current
        }

        static func member(named name: String, in id: UInt32, of btf: BTF, depth: Int) -> UInt32? {
            guard depth < 8, let type = btf.type(btf.resolved(id)), type.kind == .struct || type.kind == .union else {
                return nil
            }
            if let member = type.members.first(where: { $0.name == name }) { return member.type }
            for anonymous in type.members where anonymous.name.isEmpty {
                if let found = member(named: name, in: anonymous.type, of: btf, depth: depth + 1) { return found }
            }
            return nil
        }
    }
}
