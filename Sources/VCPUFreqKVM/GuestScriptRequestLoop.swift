/// The parameter block of the interpreter's REQUESTS op (`GuestOp.requests`):
/// a loop of guest requests that each take time stamps and may wait until
/// the host shows the request applied. This is how the doorbell benchmark
/// measures, inside the guest and per request, what a request costs the
/// vCPU and how long until the host applied it — with the guest's own
/// time stamp counter, since a host clock cannot see when a guest store
/// happened.
///
/// The block lives in guest RAM (the op only carries its address); the
/// guest updates `rng` in place. Layout: Sources/CVCPUFreqKVM/
/// guest_interpreter.S, "11 REQUESTS"; every field is a little-endian u64,
/// or two u32 halves (A low, B high).
public struct RequestLoopParameters: Sendable, Equatable {
    /// How one request reaches the host.
    public enum Kind: UInt64, Sendable {
        /// A 32-bit store of the value at `target`: a device register
        /// (`set_perf`), so an MMIO exit when nothing backs it.
        case store = 0
        /// The shared-page protocol on the slot at `target` (as `GuestOp.publish`):
        /// value at `target + field`, flags in the slot, the doorbell rung
        /// only when the slot's host flags ask for a kick.
        case publish = 1
    }

    /// Byte offsets of the fields in the block.
    public enum Field {
        public static let kind = 0
        public static let target = 8
        public static let doorbell = 16
        public static let field = 24
        public static let values = 32
        public static let flags = 40
        public static let watch = 48
        public static let mask = 56
        public static let expected = 64
        public static let timeoutTicks = 72
        public static let samples = 80
        public static let gapMask = 88
        public static let rng = 96
    }

    /// Bytes of the block.
    public static let size = 104
    /// Bytes of one sample: two u64 (request done, applied), ticks from the request's start.
    public static let sampleSize = 16
    /// What the guest stores in a sample's second half when its wait gave up.
    public static let abandoned: UInt64 = .max

    public var kind: Kind
    /// The register (`.store`) or the slot (`.publish`).
    public var target: UInt64
    /// The doorbell a publish rings when asked (`.publish` only).
    public var doorbell: UInt64 = 0
    /// Slot offset of the field that carries the value (`.publish` only),
    /// e.g. `SharedPageABI.Slot.performanceKHz`.
    public var field: Int = 0
    /// Values of even (A) and odd (B) requests: far apart, so that every
    /// request changes the hint.
    public var values: (a: UInt32, b: UInt32)
    /// Slot flags of even and odd publishes.
    public var flags: (a: UInt32, b: UInt32) = (0, 0)
    /// The 32-bit word that shows "applied" (0 = do not wait).
    public var watch: UInt64 = 0
    /// Bits of the watched word compared with `expected`.
    public var mask: UInt32 = 0xFFFF_FFFF
    /// `(word & mask)` once request A (or B) is applied.
    public var expected: (a: UInt32, b: UInt32) = (0, 0)
    /// A wait gives up after this many TSC ticks from the request's start
    /// (so a host that never applies costs one timeout, not a hung guest).
    public var timeoutTicks: UInt64 = 0
    /// Guest address of the sample array (count × `sampleSize` bytes); 0 = untimed.
    public var samples: UInt64 = 0
    /// After each request the guest spins `random & gapMask` iterations.
    public var gapMask: UInt64 = 0
    /// Seed of the guest's xorshift64 generator; 0 would stay 0, so it is replaced by 1.
    public var seed: UInt64 = 0x9E37_79B9_7F4A_7C15

    public init(kind: Kind, target: UInt64, values: (a: UInt32, b: UInt32)) {
        self.kind = kind
        self.target = target
        self.values = values
    }

    public static func == (l: Self, r: Self) -> Bool {
        l.kind == r.kind && l.target == r.target && l.doorbell == r.doorbell && l.field == r.field
            && l.values == r.values && l.flags == r.flags && l.watch == r.watch && l.mask == r.mask
            && l.expected == r.expected && l.timeoutTicks == r.timeoutTicks && l.samples == r.samples
            && l.gapMask == r.gapMask && l.seed == r.seed
    }

    /// The block's bytes, little-endian.
    public var encoded: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        func put(_ value: UInt64, _ offset: Int) {
            for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
        }
        func pair(_ a: UInt32, _ b: UInt32) -> UInt64 { UInt64(a) | UInt64(b) << 32 }
        put(kind.rawValue, Field.kind)
        put(target, Field.target)
        put(doorbell, Field.doorbell)
        put(UInt64(max(field, 0)), Field.field)
        put(pair(values.a, values.b), Field.values)
        put(pair(flags.a, flags.b), Field.flags)
        put(watch, Field.watch)
        put(UInt64(mask), Field.mask)
        put(pair(expected.a, expected.b), Field.expected)
        put(timeoutTicks, Field.timeoutTicks)
        put(samples, Field.samples)
        put(gapMask, Field.gapMask)
        put(seed == 0 ? 1 : seed, Field.rng)
        return bytes
    }

    /// Copies the block into `region` (guest RAM) at guest address `gpa`.
    /// - Throws: `KVMError.invalidArgument` when the block, or the sample
    ///   array for `count` requests, does not fit in the region, or `gpa`
    ///   is not 8-byte aligned.
    public func write(to region: GuestMemoryRegion, at gpa: UInt64, count: UInt32) throws(KVMError) {
        guard gpa % 8 == 0, let offset = region.offset(of: gpa), offset + Self.size <= region.size else {
            throw .invalidArgument("a request loop block at 0x\(String(gpa, radix: 16)) does not fit in RAM")
        }
        if samples != 0 {
            let bytes = UInt64(count) * UInt64(Self.sampleSize)
            guard samples % 8 == 0, let start = region.offset(of: samples), UInt64(start) + bytes <= UInt64(region.size)
            else {
                throw .invalidArgument("\(count) samples at 0x\(String(samples, radix: 16)) do not fit in RAM")
            }
        }
        let bytes = encoded
        for index in stride(from: 0, to: Self.size, by: 8) {
            var word: UInt64 = 0
            for byte in 0..<8 { word |= UInt64(bytes[index + byte]) << (8 * UInt64(byte)) }
            region.store64(word, at: offset + index)
        }
    }

    /// One request's time stamps, in TSC ticks from its start.
    public struct Sample: Sendable, Equatable {
        /// Until the request left the vCPU (the store returned, the kick was written).
        public var requestTicks: UInt64
        /// Until the watched word showed it applied; nil when the wait gave up.
        public var appliedTicks: UInt64?
    }

    /// The first `count` samples the guest wrote into `region`.
    public func samples(in region: GuestMemoryRegion, count: Int) -> [Sample] {
        guard samples != 0, let start = region.offset(of: samples), count > 0 else { return [] }
        let fitting = min(count, (region.size - start) / Self.sampleSize)
        return (0..<fitting).map { index in
            let offset = start + index * Self.sampleSize
            let applied = region.load64(at: offset + 8)
            return Sample(
                requestTicks: region.load64(at: offset), appliedTicks: applied == Self.abandoned ? nil : applied)
        }
    }
}

extension GuestOpResult {
    /// requests: waits for the watched word that gave up (timeout).
    public var abandonedWaits: UInt64 { aux }
    /// timestamp: the TSC the guest read.
    public var timestamp: UInt64 { value }
}
