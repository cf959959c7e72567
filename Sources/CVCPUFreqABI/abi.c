#include "vcpufreq_abi.h"
