import VCPUFreqFuzzTargets

fuzzMain("device")
