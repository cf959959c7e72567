import VCPUFreqFuzzTargets

fuzzMain("scmi")
