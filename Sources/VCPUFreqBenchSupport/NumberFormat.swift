import Foundation

/// How the benchmarks' tables print numbers.
public enum NumberFormat {
    /// Three significant digits below 10, fewer decimals above (latencies of
    /// µs and costs of ns share columns): 0.0181, 7.27, 17.6, 133.
    public static func significant(_ value: Double) -> String {
        guard value.isFinite else { return "—" }
        let magnitude = abs(value)
        if magnitude >= 100 { return String(Int(value.rounded())) }
        if magnitude >= 10 { return fixed(value, 1) }
        if magnitude >= 1 { return fixed(value, 2) }
        if magnitude == 0 { return "0" }
        // Below 1: three significant digits.
        var decimals = 3
        var scaled = magnitude
        while scaled < 0.1, decimals < 9 {
            scaled *= 10
            decimals += 1
        }
        return fixed(value, decimals)
    }

    /// `value` with exactly `decimals` decimals (no Foundation formatting).
    public static func fixed(_ value: Double, _ decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int(scaled / scale)
        let fraction = Int(scaled - Double(whole) * scale)
        let sign = value < 0 && scaled > 0 ? "-" : ""
        guard decimals > 0 else { return sign + String(whole) }
        let digits = String(fraction)
        return sign + String(whole) + "." + String(repeating: "0", count: max(0, decimals - digits.count)) + digits
    }

    /// printf's `%.Nf`; "—" for infinities and NaN.
    public static func decimals(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "—" }
        return String(format: "%.\(digits)f", value)
    }

    /// `decimals`, "—" for nil.
    public static func decimals(_ value: Double?, _ digits: Int) -> String {
        value.map { decimals($0, digits) } ?? "—"
    }
}
