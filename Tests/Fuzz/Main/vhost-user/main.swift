import VCPUFreqFuzzTargets

fuzzMain("vhost-user")
