import Foundation

/// `<state-dir>/bpf-pins`: the maps a daemon pinned itself, so the next
/// daemon of the instance (after a SIGKILL) knows the pins it finds are its
/// instance's, not another program's, and removes them when it stops.
///
///     boot <boot id>
///     <map id> <pin path>
///
/// Map ids restart at boot, so the record only counts in the boot that
/// wrote it (/proc/sys/kernel/random/boot_id).
struct BPFPinRecord: Equatable {
    var bootID: String
    var pins: [(id: UInt32, path: String)]

    static func == (left: BPFPinRecord, right: BPFPinRecord) -> Bool {
        left.bootID == right.bootID && left.pins.elementsEqual(right.pins) { $0.id == $1.id && $0.path == $1.path }
    }

    var text: String { (["boot \(bootID)"] + pins.map { "\($0.id) \($0.path)" }).joined(separator: "\n") + "\n" }

    /// nil for text that is not a record.
    static func parse(_ text: String) -> BPFPinRecord? {
        var lines = text.split(separator: "\n")
        guard let first = lines.first, first.hasPrefix("boot ") else { return nil }
        lines.removeFirst()
        var pins: [(id: UInt32, path: String)] = []
        for line in lines {
            let fields = line.split(separator: " ", maxSplits: 1)
            guard fields.count == 2, let id = UInt32(fields[0]), fields[1].hasPrefix("/") else { return nil }
            pins.append((id, String(fields[1])))
        }
        return BPFPinRecord(bootID: String(first.dropFirst("boot ".count)), pins: pins)
    }

    /// Whether the record names map `id` at `path` in this boot.
    func names(id: UInt32, path: String, bootID current: String) -> Bool {
        bootID == current && pins.contains { $0.id == id && $0.path == path }
    }

    static var currentBootID: String {
        ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "unknown")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func read(_ path: String) -> BPFPinRecord? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap(parse)
    }

    func write(to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
