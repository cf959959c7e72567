/// One configuration of command mode: a set of daemon settings the
/// external benchmark runs under. Written `NAME[:KEY=VALUE,...]`:
///
/// | key | meaning |
/// |---|---|
/// | `daemon=on\|off` | start the daemon for the run (default on); off: no daemon, no socket |
/// | `clamp=LIST` | `serve --clamp LIST` (e.g. `none`: no clamp actuator) |
/// | `latency=LIST` | `serve --latency LIST` (e.g. `none`: no latency hints) |
/// | `pin=on\|off` | off: `serve --no-pin` |
/// | `kick=adaptive\|always\|never` | the generated topology's `kick_mode` |
/// | `scheduler=NAME` | `serve --scheduler NAME` (e.g. `sched-ext`) |
/// | `args=OPTIONS` | more `serve` options, space-separated |
///
/// Pure: parsing and the `serve` arguments.
public struct CommandConfiguration: Sendable, Equatable {
    public var name: String
    public var daemon = true
    public var clamp: String?
    public var latency: String?
    public var pin = true
    public var kickMode: String?
    public var scheduler: String?
    public var arguments: [String] = []

    public init(name: String) { self.name = name }

    public static let keys = ["daemon", "clamp", "latency", "pin", "kick", "scheduler", "args"]

    /// Parses one `NAME[:KEY=VALUE,...]`.
    /// - Throws: `.usage` naming the flag, the configuration and the bad key or value.
    public static func parse(_ text: String) throws(WorkloadBenchError) -> CommandConfiguration {
        let flag = "--configurations"
        let head = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = head[0].trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw .usage("\(flag) \"\(text)\": a configuration needs a name of letters, digits, '-', '_' or '.'")
        }
        var configuration = CommandConfiguration(name: name)
        guard head.count == 2 else { return configuration }
        for item in head[1].split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1)
            let key = pair[0].trimmingCharacters(in: .whitespaces)
            guard pair.count == 2, !key.isEmpty else {
                throw .usage("\(flag) \"\(text)\": \"\(item)\" is not KEY=VALUE (keys: \(keys.joined(separator: ", ")))")
            }
            let value = pair[1].trimmingCharacters(in: .whitespaces)
            func onOff() throws(WorkloadBenchError) -> Bool {
                switch value {
                case "on", "true", "yes": return true
                case "off", "false", "no": return false
                default: throw .usage("\(flag) \"\(text)\": \(key)=\(value): expected on or off")
                }
            }
            func nonEmpty() throws(WorkloadBenchError) -> String {
                guard !value.isEmpty else { throw .usage("\(flag) \"\(text)\": \(key) needs a value") }
                return value
            }
            switch key {
            case "daemon": configuration.daemon = try onOff()
            case "clamp": configuration.clamp = try nonEmpty()
            case "latency": configuration.latency = try nonEmpty()
            case "pin": configuration.pin = try onOff()
            case "kick":
                guard ["adaptive", "always", "never"].contains(value) else {
                    throw .usage("\(flag) \"\(text)\": kick=\(value): expected adaptive, always or never")
                }
                configuration.kickMode = value
            case "scheduler": configuration.scheduler = try nonEmpty()
            case "args": configuration.arguments = try nonEmpty().split(separator: " ").map(String.init)
            default:
                throw .usage("\(flag) \"\(text)\": unknown key \"\(key)\" (keys: \(keys.joined(separator: ", ")))")
            }
        }
        if !configuration.daemon,
            configuration.clamp != nil || configuration.latency != nil || configuration.kickMode != nil
                || configuration.scheduler != nil || !configuration.arguments.isEmpty || !configuration.pin
        {
            throw .usage("\(flag) \"\(text)\": daemon=off takes no daemon settings")
        }
        return configuration
    }

    /// The `serve` options beyond the topology, socket and state directory.
    public var serveArguments: [String] {
        var result: [String] = []
        if let clamp { result += ["--clamp", clamp] }
        if let latency { result += ["--latency", latency] }
        if !pin { result.append("--no-pin") }
        if let scheduler { result += ["--scheduler", scheduler] }
        return result + arguments
    }

    /// The report's words.
    public var summary: String {
        guard daemon else { return "no daemon" }
        var parts = ["daemon"]
        if let clamp { parts.append("clamp=\(clamp)") }
        if let latency { parts.append("latency=\(latency)") }
        if !pin { parts.append("no pinning") }
        if let kickMode { parts.append("kick_mode \(kickMode)") }
        if let scheduler { parts.append("scheduler \(scheduler)") }
        if !arguments.isEmpty { parts.append("serve \(arguments.joined(separator: " "))") }
        return parts.joined(separator: ", ")
    }
}
