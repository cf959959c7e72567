import VCPUFreqFuzzTargets

fuzzMain("protocol")
