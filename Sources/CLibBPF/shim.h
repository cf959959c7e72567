// CLibBPF: libbpf (Debian libbpf-dev 1.1.2) and the vcpufreq map layouts (the
// monitor's and the scheduler's), as
// one Clang module for Swift. Exactly one Swift file, VCPUFreqBPF/LibBPF.swift,
// imports it.
#ifndef VCPUFREQ_CLIBBPF_SHIM_H
#define VCPUFREQ_CLIBBPF_SHIM_H

#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include "../../bpf/vcpufreq_bpf.h"
#include "../../bpf/vcpufreq_sched.h"

#endif
