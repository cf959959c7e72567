import Foundation

/// Reads a /proc or /sys file whole. `String(contentsOfFile:)` trusts the
/// size stat reports, which is 0 for these files, and returns only the first
/// 4 KiB here (a daemon's /proc/<pid>/maps is ~16 KiB); reading to EOF gets
/// everything.
public enum ProcText {
    public static func read(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }
}
