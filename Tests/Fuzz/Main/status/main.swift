import VCPUFreqFuzzTargets

fuzzMain("status")
