import VCPUFreqFuzzTargets

fuzzMain("topology")
