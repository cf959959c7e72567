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

rm -rf "$here/phone-4-2-2" "$here/laptop-4-4" "$here/server-16" "$here/this-machine"

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
