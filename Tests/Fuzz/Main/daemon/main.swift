import VCPUFreqFuzzTargets

fuzzMain("daemon")
