import VCPUFreqFuzzTargets

fuzzMain("virtqueue")
