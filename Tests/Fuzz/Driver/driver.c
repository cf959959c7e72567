#include "vcpufreq_fuzz_driver.h"

// Declared by libFuzzer's FuzzerInterface.h, which the toolchain does not install.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

int vcpufreq_fuzz_run(int argc, char **argv, int (*body)(const uint8_t *data, size_t size)) {
    return LLVMFuzzerRunDriver(&argc, &argv, body);
}
