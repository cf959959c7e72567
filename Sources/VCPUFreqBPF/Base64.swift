/// Standard base64 (RFC 4648, with padding) decoding, for the BPF objects the
/// build embeds as string literals. Not a general-purpose decoder: it rejects
/// whitespace and the URL alphabet.
enum Base64 {
    /// 0...63 for an alphabet byte, 0xff otherwise.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xff, count: 256)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    /// The decoded bytes, or nil when `text` is not valid padded base64.
    static func decode(_ text: String) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 4 * 3)
        var index = 0
        while index < input.count {
            let isLast = index + 4 == input.count
            let padding = isLast ? (input[index + 3] == UInt8(ascii: "=") ? 1 : 0) + (input[index + 2] == UInt8(ascii: "=") ? 1 : 0) : 0
            if padding == 1 && input[index + 2] == UInt8(ascii: "=") { return nil }
            var group: UInt32 = 0
            for offset in 0..<4 {
                let byte = input[index + offset]
                let value: UInt8
                if offset >= 4 - padding {
                    value = 0
                } else {
                    value = values[Int(byte)]
                    if value == 0xff { return nil }
                }
                group = group << 6 | UInt32(value)
            }
            output.append(UInt8(truncatingIfNeeded: group >> 16))
            if padding < 2 { output.append(UInt8(truncatingIfNeeded: group >> 8)) }
            if padding < 1 { output.append(UInt8(truncatingIfNeeded: group)) }
            index += 4
        }
        return output
    }
}
