import VCPUFreqFuzzTargets

fuzzMain("trace")
