import Foundation

/// The latency distributions as an SVG of CDFs, one panel per placement,
/// one curve per path, on a logarithmic µs axis (the paths span three
/// decades), with the design's 50 µs p99 target drawn in. Written by hand:
/// no dependency, a few kB.
public enum LatencyChart {
    static let width = 900.0
    static let panelHeight = 260.0
    static let left = 70.0
    static let right = 210.0
    static let top = 50.0
    static let gap = 60.0
    static let colors: [RequestPathKind: String] = [
        .inVMM: "#444444", .forwarded: "#d62728", .kicked: "#1f77b4", .suppressed: "#2ca02c",
        .bpfMapPage: "#9467bd",
    ]
    /// Points per curve at most: quantiles beyond this add nothing visible.
    static let maximumPoints = 300

    public static func svg(_ results: DoorbellResults) -> String {
        let panels = results.placements.filter { $0.requests.contains { !$0.latencyQuantiles.isEmpty } }
        let all = panels.flatMap { $0.requests.flatMap(\.latencyQuantiles) }.filter { $0 > 0 }
        let lowest = all.min() ?? 1
        let highest = all.max() ?? 10
        let decadeLow = floorLog10(lowest)
        var decadeHigh = ceilLog10(highest)
        if decadeHigh <= decadeLow { decadeHigh = decadeLow + 1 }
        let height = top + Double(max(panels.count, 1)) * (panelHeight + gap) + 10
        let plotWidth = width - left - right
        func x(_ microseconds: Double) -> Double {
            let clamped = min(max(microseconds, pow10(decadeLow)), pow10(decadeHigh))
            return left + (Foundation.log10(clamped) - Double(decadeLow)) / Double(decadeHigh - decadeLow) * plotWidth
        }

        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" \
            viewBox="0 0 \(f(width)) \(f(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(f(left))" y="24" font-size="16" font-weight="bold">Request → hint applied, CDF per path (log scale)</text>
            <text x="\(f(left))" y="40" fill="#555">\(escape(results.machine.summary))\(results.settings.quick ? " — quick mode" : "")</text>

            """
        for (index, panel) in panels.enumerated() {
            let y0 = top + Double(index) * (panelHeight + gap) + 20
            func y(_ fraction: Double) -> Double { y0 + panelHeight - fraction * panelHeight }
            svg += "<text x=\"\(f(left))\" y=\"\(f(y0 - 6))\" font-weight=\"bold\">\(escape(panel.placement.title))</text>\n"
            svg += "<rect x=\"\(f(left))\" y=\"\(f(y0))\" width=\"\(f(plotWidth))\" height=\"\(f(panelHeight))\" "
                + "fill=\"none\" stroke=\"#999\"/>\n"
            // Grid: every 1-9 × decade, labels on decades; fractions every 0.25.
            for decade in decadeLow..<decadeHigh {
                for step in 1...9 {
                    let value = Double(step) * pow10(decade)
                    let gx = x(value)
                    let major = step == 1
                    svg += "<line x1=\"\(f(gx))\" y1=\"\(f(y0))\" x2=\"\(f(gx))\" y2=\"\(f(y0 + panelHeight))\" "
                        + "stroke=\"\(major ? "#bbb" : "#eee")\"/>\n"
                    if major {
                        svg += "<text x=\"\(f(gx))\" y=\"\(f(y0 + panelHeight + 16))\" text-anchor=\"middle\">"
                            + "\(label(decade))</text>\n"
                    }
                }
            }
            svg += "<text x=\"\(f(x(pow10(decadeHigh))))\" y=\"\(f(y0 + panelHeight + 16))\" text-anchor=\"middle\">"
                + "\(label(decadeHigh))</text>\n"
            svg += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(y0 + panelHeight + 34))\" text-anchor=\"middle\">µs</text>\n"
            for fraction in [0.0, 0.25, 0.5, 0.75, 0.99, 1.0] {
                let gy = y(fraction)
                svg += "<line x1=\"\(f(left))\" y1=\"\(f(gy))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(gy))\" "
                    + "stroke=\"\(fraction == 0.99 ? "#f4c542" : "#eee")\"/>\n"
                svg += "<text x=\"\(f(left - 6))\" y=\"\(f(gy + 4))\" text-anchor=\"end\">"
                    + "\(fraction == 0.99 ? "p99" : Report.number(fraction))</text>\n"
            }
            // The design's kick target: p99 ≤ 50 µs.
            let target = x(Findings.kickLatencyP99LimitMicroseconds)
            svg += "<line x1=\"\(f(target))\" y1=\"\(f(y0))\" x2=\"\(f(target))\" y2=\"\(f(y0 + panelHeight))\" "
                + "stroke=\"#f4a742\" stroke-dasharray=\"5,4\" stroke-width=\"1.5\"/>\n"
            svg += "<text x=\"\(f(target + 4))\" y=\"\(f(y0 + 14))\" fill=\"#c77800\">50 µs target</text>\n"
            var legendY = y0 + 14
            for request in panel.requests where !request.latencyQuantiles.isEmpty {
                let color = colors[request.path] ?? "#000"
                let points = cdf(quantiles: request.latencyQuantiles).map { "\(f(x($0.0))),\(f(y($0.1)))" }
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
                let p50 = request.latency.map { Report.number($0.p50) } ?? "—"
                let p99 = request.latency.map { Report.number($0.p99) } ?? "—"
                svg += "<line x1=\"\(f(width - right + 12))\" y1=\"\(f(legendY - 4))\" x2=\"\(f(width - right + 32))\" "
                    + "y2=\"\(f(legendY - 4))\" stroke=\"\(color)\" stroke-width=\"3\"/>\n"
                svg += "<text x=\"\(f(width - right + 38))\" y=\"\(f(legendY))\">\(request.path.rawValue) "
                    + "\(escape(shortTitle(request.path)))</text>\n"
                svg += "<text x=\"\(f(width - right + 38))\" y=\"\(f(legendY + 14))\" fill=\"#555\">p50 \(p50), p99 \(p99) µs</text>\n"
                legendY += 36
            }
        }
        return svg + "</svg>\n"
    }

    static func shortTitle(_ kind: RequestPathKind) -> String {
        switch kind {
        case .inVMM: return "MMIO, in the VMM"
        case .forwarded: return "MMIO, to the daemon"
        case .kicked: return "shared page + kick"
        case .suppressed: return "shared page, no kick"
        case .bpfMapPage: return "BPF-map page, BPF reads"
        }
    }

    /// (value, cumulative fraction) of quantiles at fractions 1/n … 1.
    public static func cdf(quantiles: [Double]) -> [(Double, Double)] {
        quantiles.enumerated().map { ($0.element, Double($0.offset + 1) / Double(quantiles.count)) }
    }

    /// (value, cumulative fraction) at most `maximumPoints` quantiles, the
    /// extremes included.
    public static func cdf(_ samples: [Double]) -> [(Double, Double)] {
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return [] }
        let n = sorted.count
        let step = max(1, (n + maximumPoints - 1) / maximumPoints)
        var points: [(Double, Double)] = []
        var index = 0
        while index < n {
            points.append((sorted[index], Double(index + 1) / Double(n)))
            index += step
        }
        if points.last?.1 != 1 { points.append((sorted[n - 1], 1)) }
        return points
    }

    // MARK: Arithmetic

    static func pow10(_ decade: Int) -> Double { Foundation.pow(10, Double(decade)) }

    static func floorLog10(_ value: Double) -> Int { Int(Foundation.log10(value).rounded(.down)) }
    static func ceilLog10(_ value: Double) -> Int { Int(Foundation.log10(value).rounded(.up)) }

    /// "1", "10", "1000"; "0.1", "0.01" below one.
    static func label(_ decade: Int) -> String {
        decade >= 0 ? "1" + String(repeating: "0", count: decade) : "0." + String(repeating: "0", count: -decade - 1) + "1"
    }

    static func f(_ value: Double) -> String { Report.fixed(value, 1) }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
