#!/bin/sh
# Regenerates the fixture sysfs trees beside this script. The trees are
# committed; run this only to change them. Each tree holds what the probe
# reads under devices/system/cpu, shaped like the real kernel's files.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

# cpu TREE ID CAPACITY CLUSTER_ID PACKAGE CLUSTER_CPUS   (CAPACITY "-" = no file)
cpu() {
    d="$here/$1/devices/system/cpu/cpu$2"
    mkdir -p "$d/topology"
    [ "$3" = "-" ] || echo "$3" > "$d/cpu_capacity"
    echo "$4" > "$d/topology/cluster_id"
    echo "$5" > "$d/topology/physical_package_id"
    echo "$6" > "$d/topology/cluster_cpus_list"
    echo "$6" > "$d/topology/core_siblings_list"
}

# policy DIR RELATED GOVERNOR MIN MAX [AVAILABLE...]
policy() {
    d="$1"; related="$2"; governor="$3"; min="$4"; max="$5"; shift 5
    mkdir -p "$d"
    echo "$related" > "$d/related_cpus"
    echo "$related" > "$d/affected_cpus"
    echo "$governor" > "$d/scaling_governor"
    echo "$min" > "$d/cpuinfo_min_freq"
    echo "$max" > "$d/cpuinfo_max_freq"
    [ $# -eq 0 ] || echo "$* " > "$d/scaling_available_frequencies"   # the kernel leaves a trailing space
}

possible() {
    mkdir -p "$here/$1/devices/system/cpu"
    for f in possible present online; do echo "$2" > "$here/$1/devices/system/cpu/$f"; done
}

# cpulists TREE POSSIBLE PRESENT ONLINE
cpulists() {
    mkdir -p "$here/$1/devices/system/cpu"
    echo "$2" > "$here/$1/devices/system/cpu/possible"
    echo "$3" > "$here/$1/devices/system/cpu/present"
    echo "$4" > "$here/$1/devices/system/cpu/online"
}

# x86cpu TREE ID CLUSTER_ID CLUSTER_CPUS PACKAGE_CPUS THREAD_SIBLINGS CORE_ID
# x86 has no cpu_capacity; cluster_id is the L2 id; cpu0 has no online file.
x86cpu() {
    d="$here/$1/devices/system/cpu/cpu$2"
    mkdir -p "$d/topology"
    [ "$2" = 0 ] || echo 1 > "$d/online"
    echo "$3" > "$d/topology/cluster_id"
    echo 0 > "$d/topology/physical_package_id"
    echo 0 > "$d/topology/die_id"
    echo "$7" > "$d/topology/core_id"
    echo "$4" > "$d/topology/cluster_cpus_list"
    echo "$5" > "$d/topology/core_siblings_list"
    echo "$5" > "$d/topology/package_cpus_list"
    echo "$6" > "$d/topology/thread_siblings_list"
    echo "$6" > "$d/topology/core_cpus_list"
}

# pstate TREE CPU DRIVER GOVERNOR MIN MAX
# One policy per CPU (intel_pstate, amd-pstate): no scaling_available_frequencies;
# cpuN/cpufreq is a link to the policy directory.
pstate() {
    d="$here/$1/devices/system/cpu/cpufreq/policy$2"
    mkdir -p "$d"
    echo "$2" > "$d/related_cpus"
    echo "$2" > "$d/affected_cpus"
    echo "$3" > "$d/scaling_driver"
    echo "$4" > "$d/scaling_governor"
    echo "performance powersave" > "$d/scaling_available_governors"
    echo "$5" > "$d/cpuinfo_min_freq"
    echo "$6" > "$d/cpuinfo_max_freq"
    echo "$5" > "$d/scaling_min_freq"
    echo "$6" > "$d/scaling_max_freq"
    echo "$5" > "$d/scaling_cur_freq"
    echo "<unsupported>" > "$d/scaling_setspeed"
    echo 0 > "$d/cpuinfo_transition_latency"
    echo "default performance balance_performance balance_power power" > "$d/energy_performance_available_preferences"
    echo "balance_performance" > "$d/energy_performance_preference"
    link "$1" "$2" "$2"
}

# link TREE CPU POLICY: cpuN/cpufreq -> ../cpufreq/policyX, as the kernel makes it.
link() {
    mkdir -p "$here/$1/devices/system/cpu/cpu$2"
    ln -sfn "../cpufreq/policy$3" "$here/$1/devices/system/cpu/cpu$2/cpufreq"
}

# cppc TREE CPU HIGHEST NOMINAL LOWEST_NONLINEAR LOWEST NOMINAL_MHZ LOWEST_MHZ (cpuN/acpi_cppc, firmware _CPC)
cppc() {
    d="$here/$1/devices/system/cpu/cpu$2/acpi_cppc"
    mkdir -p "$d"
    echo "$3" > "$d/highest_perf"
    echo "$4" > "$d/nominal_perf"
    echo "$5" > "$d/lowest_nonlinear_perf"
    echo "$6" > "$d/lowest_perf"
    echo "$7" > "$d/nominal_freq"
    echo "$8" > "$d/lowest_freq"
    echo "$4" > "$d/reference_perf"
    echo 0 > "$d/wraparound_time"
}

rm -rf "$here/phone-4-2-2" "$here/laptop-4-4" "$here/server-16" "$here/this-machine" "$here/intel-hybrid-4p8e" \
    "$here/intel-hybrid-4p8e-no-cppc" "$here/amd-zen5-4-8c" "$here/dynamiq-4-4-1" "$here/server-offline-hole" \
    "$here/unreadable-cpufreq"

# Phone: 4 little + 2 mid + 2 big, cpufreq/policyX directories (modern layout).
t=phone-4-2-2
possible $t 0-7
for i in 0 1 2 3; do cpu $t $i 160 0 0 0-3; done
for i in 4 5; do cpu $t $i 498 1 0 4-5; done
for i in 6 7; do cpu $t $i 1024 2 0 6-7; done
p="$here/$t/devices/system/cpu/cpufreq"
policy "$p/policy0" "0 1 2 3" schedutil 300000 1803000 \
    300000 574000 738000 930000 1098000 1197000 1328000 1401000 1598000 1704000 1803000
policy "$p/policy4" "4 5" schedutil 400000 2253000 \
    400000 553000 696000 799000 910000 1024000 1197000 1328000 1491000 1663000 1836000 1999000 2130000 2253000
policy "$p/policy6" "6 7" schedutil 500000 2802000 \
    500000 851000 984000 1106000 1277000 1426000 1582000 1745000 1826000 2048000 2188000 2252000 2401000 2507000 2630000 2704000 2802000

# Laptop: 4 + 4, per-CPU cpuN/cpufreq directories (older layout), tables
# listed in descending order as acpi-cpufreq does.
t=laptop-4-4
possible $t 0-7
for i in 0 1 2 3; do
    cpu $t $i 382 0 0 0-3
    policy "$here/$t/devices/system/cpu/cpu$i/cpufreq" "0 1 2 3" schedutil 500000 2000000 \
        2000000 1800000 1500000 1200000 1000000 774000 500000
done
for i in 4 5 6 7; do
    cpu $t $i 1024 1 0 4-7
    policy "$here/$t/devices/system/cpu/cpu$i/cpufreq" "4 5 6 7" schedutil 500000 2400000 \
        2400000 2200000 2000000 1700000 1400000 1100000 800000 500000
done

# Server: 16 homogeneous CPUs, one policy per CPU (intel_pstate style: only
# cpuinfo_min/max, no scaling_available_frequencies), no cpu_capacity,
# one cluster id per core (x86 reports the L2 id).
t=server-16
possible $t 0-15
for i in $(seq 0 15); do
    cpu $t $i - $i 0 $i
    policy "$here/$t/devices/system/cpu/cpufreq/policy$i" "$i" performance 1200000 3000000
done

# This machine: 2 CPUs, no cpufreq driver (empty cpufreq/), capacity 1024,
# no cluster id; /proc/cpuinfo says 2700 MHz.
t=this-machine
possible $t 0-1
for i in 0 1; do cpu $t $i 1024 65535 0 0-1; done
mkdir -p "$here/$t/devices/system/cpu/cpufreq"
touch "$here/$t/devices/system/cpu/cpufreq/.keep"
printf 'processor\t: 0\ncpu MHz\t\t: 2700.000\n\nprocessor\t: 1\ncpu MHz\t\t: 2699.998\n' > "$here/$t/cpuinfo"

# Intel hybrid laptop (Alder Lake-P shape): 4 P-cores with SMT (CPUs 0-7,
# siblings 2k and 2k+1) and 8 E-cores (CPUs 8-15, two quads sharing an L2).
# intel_pstate (HWP, active mode): one policy per CPU, cpuinfo_min/max_freq and
# base_frequency, no scaling_available_frequencies, no cpu_capacity. On hybrid
# parts intel_pstate turns HWP performance into kHz with 78741 kHz per unit on
# P-cores and 100000 on E-cores, rounded down to 100 MHz: P highest perf 60 ->
# 4700000, guaranteed 27 -> base 2100000; E 34 -> 3400000, 15 -> 1500000.
# With the firmware's _CPC, acpi_cppc/ shows those HWP units; the -no-cppc
# tree is the same laptop on firmware without _CPC.
intel_hybrid() {
    t=$1
    cpulists $t 0-15 0-15 0-15
    for i in 0 1 2 3 4 5 6 7; do
        k=$((i / 2))
        x86cpu $t $i $((k * 8)) "$((2 * k))-$((2 * k + 1))" 0-15 "$((2 * k))-$((2 * k + 1))" $((k * 4))
        pstate $t $i intel_pstate powersave 400000 4700000
        echo 2100000 > "$here/$t/devices/system/cpu/cpufreq/policy$i/base_frequency"
        [ "$2" = cppc ] && cppc $t $i 60 27 8 6 2100 400
    done
    for i in 8 9 10 11 12 13 14 15; do
        if [ $i -lt 12 ]; then l2=32; l2cpus=8-11; else l2=40; l2cpus=12-15; fi
        x86cpu $t $i $l2 $l2cpus 0-15 $i $((i + 8))
        pstate $t $i intel_pstate powersave 400000 3400000
        echo 1500000 > "$here/$t/devices/system/cpu/cpufreq/policy$i/base_frequency"
        [ "$2" = cppc ] && cppc $t $i 34 15 6 4 1500 400
    done
    return 0
}
intel_hybrid intel-hybrid-4p8e cppc
intel_hybrid intel-hybrid-4p8e-no-cppc none

# AMD Zen 5 laptop with preferred cores (Ryzen AI 300 shape): 4 Zen 5 cores
# (CPUs 0-3, SMT siblings 12-15) and 8 Zen 5c cores (4-11, siblings 16-23).
# amd-pstate-epp, one policy per CPU. Since Linux 6.9 a preferred-core part has
# amd_pstate_hw_prefcore = enabled, each core's CPPC highest perf (its rank,
# which the platform changes at runtime) in amd_pstate_prefcore_ranking and
# acpi_cppc/highest_perf, and a maximum frequency computed from a fixed
# numerator per core type (amd_pstate_highest_perf): 196 on Zen 5, the core's
# own highest perf on Zen 5c. nominal 2000 MHz at perf 77: 2000000 * 196 / 77
# = 5090909 kHz, * 127 / 77 = 3298701 kHz; lowest non-linear perf 41 -> 1064935.
t=amd-zen5-4-8c
cpulists $t 0-23 0-23 0-23
for i in $(seq 0 23); do
    core=$((i % 12)); sibling=$(( i < 12 ? i + 12 : i - 12 ))
    lo=$(( i < sibling ? i : sibling )); hi=$(( i < sibling ? sibling : i ))
    x86cpu $t $i $((core * 2)) "$lo,$hi" 0-23 "$lo,$hi" $core
    if [ $core -lt 4 ]; then max=5090909; numerator=196; rank=$((236 - 5 * core)); else max=3298701; numerator=127; rank=127; fi
    pstate $t $i amd-pstate-epp powersave 600000 $max
    d="$here/$t/devices/system/cpu/cpufreq/policy$i"
    echo $numerator > "$d/amd_pstate_highest_perf"
    echo $max > "$d/amd_pstate_max_freq"
    echo 1064935 > "$d/amd_pstate_lowest_nonlinear_freq"
    echo $rank > "$d/amd_pstate_prefcore_ranking"
    echo enabled > "$d/amd_pstate_hw_prefcore"
    echo 1 > "$d/boost"
    cppc $t $i $rank 77 41 23 2000 600
done

# arm64 DynamIQ phone (Tensor G3 shape): 4 little + 4 mid + 1 big in one DSU
# cluster: the device tree's cpu-map has one cluster, so every CPU has
# cluster_id 0 and cluster_cpus_list 0-8, yet there are three cpufreq policies
# (policy0, policy4, policy8) with their own tables, and cpu_capacity from
# capacity-dmips-mhz.
t=dynamiq-4-4-1
cpulists $t 0-8 0-8 0-8
for i in 0 1 2 3; do cpu $t $i 248 0 0 0-8; link $t $i 0; done
for i in 4 5 6 7; do cpu $t $i 667 0 0 0-8; link $t $i 4; done
cpu $t 8 1024 0 0 0-8; link $t 8 8
p="$here/$t/devices/system/cpu/cpufreq"
policy "$p/policy0" "0 1 2 3" schedutil 324000 1704000 \
    324000 610000 820000 955000 1098000 1197000 1328000 1425000 1548000 1704000
policy "$p/policy4" "4 5 6 7" schedutil 402000 2367000 \
    402000 578000 697000 721000 840000 1010000 1183000 1378000 1519000 1663000 1795000 1957000 2130000 2253000 2367000
policy "$p/policy8" "8" schedutil 500000 2914000 \
    500000 730000 850000 980000 1090000 1257000 1387000 1524000 1663000 1794000 1905000 2015000 2130000 2245000 2365000 2491000 2611000 2707000 2847000 2914000
for d in "$p"/policy*; do echo exynos-acme > "$d/scaling_driver"; done

# x86 server (one Xeon, 12 cores with SMT: siblings n and n+12) whose firmware
# declares 32 possible CPUs of which 24 are present (cpu24-cpu31 have no
# directory), with CPUs 6-7 taken offline by the operator (online 0-5,8-23):
# their cpuN/ stays, without topology/; their per-CPU intel_pstate policies
# stay too, but on a live host every attribute of them answers EBUSY (an
# inactive policy) - the test injects that.
t=server-offline-hole
cpulists $t 0-31 0-23 0-5,8-23
for i in $(seq 0 23); do
    core=$((i % 12)); sibling=$(( i < 12 ? i + 12 : i - 12 ))
    lo=$(( i < sibling ? i : sibling )); hi=$(( i < sibling ? sibling : i ))
    if [ $i = 6 ] || [ $i = 7 ]; then
        mkdir -p "$here/$t/devices/system/cpu/cpu$i"; echo 0 > "$here/$t/devices/system/cpu/cpu$i/online"
    else
        x86cpu $t $i $((core * 2)) "$lo,$hi" 0-5,8-23 "$lo,$hi" $core
    fi
    pstate $t $i intel_pstate performance 800000 3300000
    echo 2100000 > "$here/$t/devices/system/cpu/cpufreq/policy$i/base_frequency"
done

# arm64 4 + 4 laptop whose cpufreq directory the prober may not read (a
# sandbox or an SELinux/AppArmor rule: EACCES). The tree itself is readable;
# the test makes devices/system/cpu/cpufreq mode 000 in a copy and probes as
# an unprivileged user.
t=unreadable-cpufreq
cpulists $t 0-7 0-7 0-7
for i in 0 1 2 3; do cpu $t $i 485 0 0 0-3; link $t $i 0; done
for i in 4 5 6 7; do cpu $t $i 1024 1 0 4-7; link $t $i 4; done
p="$here/$t/devices/system/cpu/cpufreq"
policy "$p/policy0" "0 1 2 3" schedutil 408000 1800000 408000 600000 816000 1008000 1200000 1416000 1608000 1800000
policy "$p/policy4" "4 5 6 7" schedutil 408000 2400000 408000 600000 816000 1008000 1200000 1416000 1608000 1800000 2016000 2208000 2400000
