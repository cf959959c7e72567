import ArgumentParser

struct DeviceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Run guest accesses through the device model and the policy.",
        subcommands: [DeviceReplay.self]
    )
}
