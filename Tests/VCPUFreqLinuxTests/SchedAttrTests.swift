import Testing
@testable import VCPUFreqLinux
