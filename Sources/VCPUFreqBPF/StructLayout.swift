/// The layout of one C struct: its size and each field's offset and size, in
/// bytes. Used to prove that the host compiler's view of vcpufreq_bpf.h, the
/// BPF object's BTF and docs/bpf.md agree.
public struct StructLayout: Equatable, Sendable, CustomStringConvertible {
    public struct Field: Equatable, Sendable {
        public var name: String
        public var offset: Int
        public var size: Int

        public init(name: String, offset: Int, size: Int) {
            self.name = name
            self.offset = offset
            self.size = size
        }
    }

    public var name: String
    public var size: Int
    public var fields: [Field]

    public init(name: String, size: Int, fields: [Field]) {
        self.name = name
        self.size = size
        self.fields = fields
    }

    public var description: String {
        "struct \(name) (\(size) bytes): " + fields.map { "\($0.name)@\($0.offset)+\($0.size)" }.joined(separator: " ")
    }
}
