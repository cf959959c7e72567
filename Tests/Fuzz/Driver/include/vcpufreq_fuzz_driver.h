#ifndef VCPUFREQ_FUZZ_DRIVER_H
#define VCPUFREQ_FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// Runs libFuzzer's driver (LLVMFuzzerRunDriver, from the archive without a
/// main that scripts/fuzz links into every fuzz target) on `body`: the
/// target's main.swift stays an ordinary Swift program and libFuzzer's
/// command line (-runs=, -max_total_time=, corpus directories, a crash file
/// to reproduce) works unchanged.
int vcpufreq_fuzz_run(int argc, char **argv, int (*body)(const uint8_t *data, size_t size));

#endif
