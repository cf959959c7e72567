/* vcpufreq guest ABIs: see docs/abi.md. Filled in by the device-model work. */
#ifndef VCPUFREQ_ABI_H
#define VCPUFREQ_ABI_H
#include <stdint.h>
#endif
