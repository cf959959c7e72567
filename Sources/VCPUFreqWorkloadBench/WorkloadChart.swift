import VCPUFreqBenchSupport

/// results/workload.svg: one bar group per test (and the Weighted Total),
/// one bar per configuration that ran, its height the mean score, the
/// error bar its 95 % bootstrap interval. Pure.
public enum WorkloadChart {
    static let palette = ["#777777", "#d95f02", "#7570b3", "#1b9e77", "#e7298a", "#66a61e", "#e6ab02"]

    public static func svg(_ results: WorkloadResults) -> String {
        let configurations = results.ranConfigurations
        let rows = results.tests
        let left = 60.0, top = 70.0, plotHeight = 300.0, barWidth = 16.0, groupGap = 26.0
        let groupWidth = Double(max(configurations.count, 1)) * barWidth + groupGap
        let width = left + Double(max(rows.count, 1)) * groupWidth + 20
        let height = top + plotHeight + 90
        var highest = 0.0
        for row in rows {
            for name in configurations {
                guard let result = row.result(name) else { continue }
                highest = max(highest, result.scoreCi95?.last ?? 0, result.score ?? 0)
            }
        }
        let scaleTop = niceCeiling(highest * 1.05)
        func y(_ value: Double) -> Double { top + plotHeight - plotHeight * min(max(value / scaleTop, 0), 1) }

        var svg = SVG.header(
            width: width, height: height, left: left,
            title: results.mode == .guest ? "bench workload: score per test (higher is better)" : "bench workload: \(results.settings.command ?? "command")",
            subtitle: "\(results.machine.cpuModel), contention \(results.settings.contention.rawValue), \(results.settings.rounds) rounds; bars: mean, whiskers: 95 % bootstrap CI")
        for step in 0...4 {
            let value = scaleTop * Double(step) / 4
            svg += SVG.line(left, y(value), width - 20, y(value), stroke: "#e5e5e5")
            svg += SVG.text(left - 6, y(value) + 4, NumberFormat.significant(value), anchor: "end", fill: "#555")
        }
        svg += SVG.line(left, top + plotHeight, width - 20, top + plotHeight, stroke: "#333")
        for (group, row) in rows.enumerated() {
            let x0 = left + Double(group) * groupWidth + groupGap / 2
            for (index, name) in configurations.enumerated() {
                guard let result = row.result(name), let score = result.score else { continue }
                let x = x0 + Double(index) * barWidth
                svg += SVG.rect(x, y(score), barWidth - 2, top + plotHeight - y(score), fill: palette[index % palette.count])
                if let interval = result.scoreCi95, interval.count == 2 {
                    let middle = x + (barWidth - 2) / 2
                    svg += SVG.line(middle, y(interval[0]), middle, y(interval[1]), stroke: "#000")
                    svg += SVG.line(middle - 3, y(interval[0]), middle + 3, y(interval[0]), stroke: "#000")
                    svg += SVG.line(middle - 3, y(interval[1]), middle + 3, y(interval[1]), stroke: "#000")
                }
            }
            svg += SVG.text(
                x0 + Double(configurations.count) * barWidth / 2, top + plotHeight + 16, row.name, anchor: "middle",
                bold: row.name == Analysis.weightedTotal, size: 11)
        }
        var legendX = left
        for (index, name) in configurations.enumerated() {
            svg += SVG.rect(legendX, height - 40, 10, 10, fill: palette[index % palette.count])
            svg += SVG.text(legendX + 14, height - 31, name, size: 11)
            legendX += 24 + Double(name.count) * 6.5
        }
        return svg + "</svg>\n"
    }

    /// 1, 2 or 5 × a power of ten at or above `value` (1 for nothing).
    static func niceCeiling(_ value: Double) -> Double {
        guard value > 0, value.isFinite else { return 1 }
        var magnitude = 1.0
        while magnitude * 10 <= value { magnitude *= 10 }
        while magnitude > value { magnitude /= 10 }
        for factor in [1.0, 2.0, 5.0, 10.0] where factor * magnitude >= value { return factor * magnitude }
        return 10 * magnitude
    }
}
