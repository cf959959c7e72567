import VCPUFreqFuzzTargets

fuzzMain("shared-page")
