/// The memory format shared by the Swift encoder and the assembly
/// interpreter (Sources/CVCPUFreqKVM/guest_interpreter.S). Both sides must
/// agree byte for byte; the tests on real KVM check every op.
public enum GuestScriptABI {
    /// One op: u32 opcode, u32 count, u64 addr, u64 value, u64 aux.
    public static let opSize = 32
    public enum OpField {
        public static let opcode = 0
        public static let count = 4
        public static let address = 8
        public static let value = 16
        public static let aux = 24
    }

    /// Results area: u64 completed ops, u32 status, u32 reserved, then records.
    public static let resultsHeaderSize = 16
    public static let completedOffset = 0
    public static let statusOffset = 8
    /// One record per op: u64 value, u64 aux.
    public static let resultSize = 16

    /// Opcodes; `GuestOp` documents their meaning.
    public enum Opcode: UInt32, Sendable {
        case end = 0
        case read = 1
        case write = 2
        case spin = 3
        case tick = 4
        case publish = 5
        case wait32 = 6
        case portRead = 7
        case portWrite = 8
        case perfTable = 9
        case timestamp = 10
        case requests = 11
        case workload = 12
    }

    /// Encodes `script` (with a final `end` if it lacks one) at `destination`,
    /// which holds `capacity` ops. Returns the number of ops written.
    /// - Throws: `KVMError.invalidArgument` for a script too long for the
    ///   area, a port access of 8 bytes, or a doorbell above 4 GiB (the
    ///   publish op carries it in 32 bits; the guest reaches only 1 GiB anyway).
    static func encode(
        _ script: GuestScript, into destination: UnsafeMutableRawPointer, capacity: Int
    ) throws(KVMError) -> Int {
        var ops = script.ops
        if ops.last != .end { ops.append(.end) }
        guard ops.count <= capacity else {
            throw .invalidArgument("a script holds at most \(capacity) ops (its END included), not \(ops.count)")
        }
        for (index, op) in ops.enumerated() {
            let record = destination + index * opSize
            let (opcode, count, address, value, aux) = try fields(of: op)
            record.storeBytes(of: opcode.rawValue.littleEndian, toByteOffset: OpField.opcode, as: UInt32.self)
            record.storeBytes(of: count.littleEndian, toByteOffset: OpField.count, as: UInt32.self)
            record.storeBytes(of: address.littleEndian, toByteOffset: OpField.address, as: UInt64.self)
            record.storeBytes(of: value.littleEndian, toByteOffset: OpField.value, as: UInt64.self)
            record.storeBytes(of: aux.littleEndian, toByteOffset: OpField.aux, as: UInt64.self)
        }
        return ops.count
    }

    private static func fields(
        of op: GuestOp
    ) throws(KVMError) -> (Opcode, UInt32, UInt64, UInt64, UInt64) {
        switch op {
        case .end:
            return (.end, 0, 0, 0, 0)
        case .read(let address, let width, let count):
            return (.read, count, address, 0, UInt64(width.rawValue))
        case .write(let address, let width, let value, let count):
            return (.write, count, address, value, UInt64(width.rawValue))
        case .spin(let iterations):
            return (.spin, 0, 0, iterations, 0)
        case .tick(let address, let ticks, let spinIterations):
            return (.tick, ticks, address, spinIterations, 0)
        case .publish(let slot, let utilization, let performanceKHz, let flags, let doorbell, let count):
            guard doorbell <= UInt64(UInt32.max) else {
                throw .invalidArgument("publish doorbell 0x\(String(doorbell, radix: 16)) is above 4 GiB")
            }
            let value = UInt64(utilization) | UInt64(performanceKHz) << 32
            let aux = UInt64(flags.rawValue) | doorbell << 32
            return (.publish, count, slot, value, aux)
        case .wait32(let address, let value, let maxSpins):
            return (.wait32, 0, address, UInt64(value), maxSpins)
        case .portRead(let port, let width, let count):
            guard width != .word64 else { throw .invalidArgument("port reads are 1, 2 or 4 bytes wide") }
            return (.portRead, count, UInt64(port), 0, UInt64(width.rawValue))
        case .portWrite(let port, let width, let value, let count):
            guard width != .word64 else { throw .invalidArgument("port writes are 1, 2 or 4 bytes wide") }
            return (.portWrite, count, UInt64(port), value, UInt64(width.rawValue))
        case .perfTable(let window, let buffer, let maximumEntries):
            return (.perfTable, 0, window, buffer, UInt64(maximumEntries))
        case .timestamp:
            return (.timestamp, 0, 0, 0, 0)
        case .requests(let parameters, let count):
            return (.requests, count, parameters, 0, 0)
        case .workload(let parameters, let count):
            return (.workload, count, parameters, 0, 0)
        }
    }

    /// Reads the results header: (ops completed, raw status).
    static func header(at results: UnsafeRawPointer) -> (completed: UInt64, status: UInt32) {
        (
            UInt64(littleEndian: results.loadUnaligned(fromByteOffset: completedOffset, as: UInt64.self)),
            UInt32(littleEndian: results.loadUnaligned(fromByteOffset: statusOffset, as: UInt32.self))
        )
    }

    /// Decodes the first `count` result records.
    static func results(at results: UnsafeRawPointer, count: Int) -> [GuestOpResult] {
        (0..<count).map { index in
            let record = results + resultsHeaderSize + index * resultSize
            return GuestOpResult(
                value: UInt64(littleEndian: record.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                aux: UInt64(littleEndian: record.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }
}
