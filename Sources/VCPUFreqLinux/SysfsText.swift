import VCPUFreqCore

/// Parsers for the text of single sysfs and procfs files. Pure: the walker
/// (`SysfsReader`) reads the files, these turn their text into values, and
/// tests feed them text directly. Each returns nil for text it cannot use
/// instead of guessing.
public enum SysfsText {
    /// A decimal integer file (`cpu_capacity`, `cluster_id`, `cpuinfo_max_freq`).
    public static func integer(_ text: String) -> Int? {
        Int(text.trimmingWhitespace)
    }

    /// A CPU list in either kernel spelling: the cpulist form (`0-3,6`,
    /// `possible`, `*_cpus_list`) or the space-separated form cpufreq uses
    /// for `related_cpus` / `affected_cpus` (`0 1 2 3`).
    public static func cpuList(_ text: String) -> CPUList? {
        let normalized = text.split(whereSeparator: \.isWhitespace).joined(separator: ",")
        guard !normalized.isEmpty else { return nil }
        return try? CPUList(parsing: normalized)
    }

    /// `scaling_available_frequencies`: kHz values separated by spaces, in
    /// whatever order the driver lists them (acpi-cpufreq lists them
    /// descending). Returned ascending, without duplicates.
    public static func frequencies(_ text: String) -> [Int]? {
        var values: [Int] = []
        for word in text.split(whereSeparator: \.isWhitespace) {
            guard let value = Int(word), value > 0 else { return nil }
            values.append(value)
        }
        guard !values.isEmpty else { return nil }
        return Array(Set(values)).sorted()
    }

    /// A one-word file (`scaling_governor`).
    public static func word(_ text: String) -> String? {
        let word = text.trimmingWhitespace
        return word.isEmpty || word.contains(where: \.isWhitespace) ? nil : word
    }

    /// The highest `cpu MHz` of /proc/cpuinfo (x86 prints one per CPU;
    /// arm64 prints none, then nil).
    public static func cpuinfoMaximumMHz(_ text: String) -> Double? {
        var highest: Double?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingWhitespace == "cpu MHz",
                let value = Double(parts[1].trimmingWhitespace), value > 0, value.isFinite
            else { continue }
            highest = max(highest ?? 0, value)
        }
        return highest
    }
}

extension StringProtocol {
    var trimmingWhitespace: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else {
            return ""
        }
        return String(self[first...last])
    }
}
