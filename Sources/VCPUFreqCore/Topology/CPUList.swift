/// A sorted, duplicate-free list of host CPU ids, written the way the kernel
/// writes them in sysfs (`0-3,6,8-9`).
public struct CPUList: Hashable, Sendable, CustomStringConvertible {
    /// Ascending, unique CPU ids.
    public private(set) var ids: [Int]

    public init<S: Sequence>(_ ids: S) where S.Element == Int {
        self.ids = Array(Set(ids)).sorted()
    }

    /// Why a CPU list could not be parsed; the description is the message.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var text: String
        public var reason: String
        public var description: String { "invalid CPU list \"\(text)\": \(reason)" }
    }

    /// Highest CPU id we accept. The kernel's NR_CPUS tops out at 8192; a
    /// larger id in a file is a typo, and refusing it bounds the memory a
    /// range like `0-4000000000` would otherwise take.
    public static let maximumCPUID = 8191

    /// Parses the sysfs/cpuset format: comma-separated ids and inclusive
    /// ranges, whitespace ignored, empty string = empty list.
    public init(parsing text: String) throws(ParseError) {
        var result: [Int] = []
        let trimmed = text.filter { !$0.isWhitespace }
        if trimmed.isEmpty { self.init([]); return }
        for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            if part.isEmpty { throw ParseError(text: text, reason: "empty element") }
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count <= 2 else { throw ParseError(text: text, reason: "\"\(part)\" is not an id or a range") }
            var values: [Int] = []
            for bound in bounds {
                guard let value = Int(bound), value >= 0 else {
                    throw ParseError(text: text, reason: "\"\(bound)\" is not a CPU id")
                }
                guard value <= Self.maximumCPUID else {
                    throw ParseError(text: text, reason: "CPU \(value) is above \(Self.maximumCPUID)")
                }
                values.append(value)
            }
            if values.count == 2 {
                guard values[0] <= values[1] else {
                    throw ParseError(text: text, reason: "range \"\(part)\" runs backwards")
                }
                result.append(contentsOf: values[0]...values[1])
            } else {
                result.append(values[0])
            }
        }
        self.init(result)
    }

    public var isEmpty: Bool { ids.isEmpty }
    public var count: Int { ids.count }
    public func contains(_ cpu: Int) -> Bool { ids.contains(cpu) }

    /// The compact form: runs of consecutive ids become ranges,
    /// as the kernel prints them (`0-3,6`).
    public var description: String {
        var parts: [String] = []
        var index = 0
        while index < ids.count {
            var end = index
            while end + 1 < ids.count && ids[end + 1] == ids[end] + 1 { end += 1 }
            if end > index {
                parts.append("\(ids[index])-\(ids[end])")
            } else {
                parts.append("\(ids[index])")
            }
            index = end + 1
        }
        return parts.joined(separator: ",")
    }
}
