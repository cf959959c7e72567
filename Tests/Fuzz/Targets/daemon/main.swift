import VCPUFreqFuzzSupport
fuzzMain { _ in }
