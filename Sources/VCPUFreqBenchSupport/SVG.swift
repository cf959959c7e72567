/// Small helpers for the benchmarks' hand-written SVG charts (no
/// dependency, a few kB per chart): coordinates with one decimal, escaped
/// text, and the few elements the charts use.
public enum SVG {
    /// A coordinate or length: one decimal.
    public static func number(_ value: Double) -> String { NumberFormat.fixed(value, 1) }

    /// `text` safe inside an element or an attribute.
    public static func escape(_ text: String) -> String {
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

    /// The opening of a document: white background, a bold title and a grey subtitle at `left`.
    public static func header(width: Double, height: Double, left: Double, title: String, subtitle: String) -> String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(number(width))" height="\(number(height))" \
        viewBox="0 0 \(number(width)) \(number(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(number(left))" y="24" font-size="16" font-weight="bold">\(escape(title))</text>
        <text x="\(number(left))" y="40" fill="#555">\(escape(subtitle))</text>

        """
    }

    public static func line(
        _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double? = nil,
        dash: String? = nil
    ) -> String {
        "<line x1=\"\(number(x1))\" y1=\"\(number(y1))\" x2=\"\(number(x2))\" y2=\"\(number(y2))\" stroke=\"\(stroke)\""
            + (width.map { " stroke-width=\"\(number($0))\"" } ?? "") + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")
            + "/>\n"
    }

    public static func rect(
        _ x: Double, _ y: Double, _ width: Double, _ height: Double, fill: String, stroke: String? = nil
    ) -> String {
        "<rect x=\"\(number(x))\" y=\"\(number(y))\" width=\"\(number(width))\" height=\"\(number(height))\" "
            + "fill=\"\(fill)\"" + (stroke.map { " stroke=\"\($0)\"" } ?? "") + "/>\n"
    }

    /// Text at (x, y); `anchor` start, middle or end.
    public static func text(
        _ x: Double, _ y: Double, _ content: String, anchor: String? = nil, fill: String? = nil, bold: Bool = false,
        size: Int? = nil
    ) -> String {
        "<text x=\"\(number(x))\" y=\"\(number(y))\""
            + (anchor.map { " text-anchor=\"\($0)\"" } ?? "") + (fill.map { " fill=\"\($0)\"" } ?? "")
            + (bold ? " font-weight=\"bold\"" : "") + (size.map { " font-size=\"\($0)\"" } ?? "")
            + ">\(escape(content))</text>\n"
    }
}
