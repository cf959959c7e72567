/*
 * The header is the product; this file only makes SwiftPM compile it as C
 * (with the package's warnings) so a broken header fails the build.
 */
#include "vcpufreq_abi.h"

/* Referencing every helper keeps them type-checked in C, not only through Swift's importer. */
void vcpufreq_abi_compile_check(void);
void vcpufreq_abi_compile_check(void)
{
    (void)vcpufreq_slot_publish;
    (void)vcpufreq_slot_read_host;
    (void)vcpufreq_slot_read_sched;
    (void)vcpufreq_header_usable;
    (void)vcpufreq_slot_of;
    (void)vcpufreq_ring_doorbell;
}
