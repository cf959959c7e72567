# shellcheck shell=sh
# The guest half of scripts/test-qemu-guest: runs as /init's body in the arm64 guest (busybox sh),
# after initramfs_init_preamble. It only reports what the guest kernel shows and does what a user
# would (governors, scaling_setspeed, a CPU load); every judgement is the host's.
#
# It talks to the host over its console, one line per event: "VCF <event> key=value ...", and
# after each step waits for the host to answer "ok" on the console (the host checks the daemon's
# STATUS in between). /vcf.conf sets MODE: "control" (report, load, the daemon stopped, stop) or
# "full", and BASE, the device's guest-physical address.

. /vcf.conf
cf=/sys/devices/system/cpu/cpufreq
ncpus=$(nproc)

say() { echo "VCF $*"; }
ack() {
  read -r reply || reply=eof
  reply=$(echo "$reply" | tr -d '\r')
  [ "$reply" = ok ] || { say abort "host said: $reply"; poweroff -f; }
}
# A sysfs list ("0 1 2 3", "300000 574000 ") as "0,1,2,3".
commas() { tr -s ' \n' ',,' <"$1" 2>/dev/null | sed 's/^,*//; s/,*$//'; }
policies() { for n in $(seq 0 $((ncpus - 1))); do [ -d "$cf/policy$n" ] && echo "$n"; done; }
# spin [CPUS]: CPUS (default: all) busy, each spinner pinned to its CPU, until unspin. At nice 19
# a spinner still makes its CPU's utilization 1024 (PELT counts running time, not weight), and this
# script, when it wants a CPU, gets it at once: with 8 vCPUs on 2 host CPUs that is the difference
# between seconds and half a minute.
spin() {
  spinners=
  for c in ${1:-$(seq 0 $((ncpus - 1)))}; do
    taskset -c "$c" sh -c 'renice -n 19 -p $$ >/dev/null; while :; do :; done' &
    spinners="$spinners $!"
  done
}
unspin() { kill $spinners; wait 2>/dev/null; }
load() { spin "$2"; sleep "$1"; unspin; }   # load SECONDS [CPUS]
# The device's registers as the driver reads them (32-bit loads, through /dev/mem), in decimal:
# cur_perf and perf_domain of every CPU's upstream window, as "cur=c0,c1,... domain=d0,d1,...".
reg() { echo $(( $(busybox devmem $((BASE + $1)) 32) )); }
registers() {
  curs= domains=
  for c in $(seq 0 $((ncpus - 1))); do
    curs="$curs,$(reg $((c * 0x1000)))" domains="$domains,$(reg $((c * 0x1000 + 0x14)))"
  done
  echo "cur=${curs#,} domain=${domains#,}"
}

say boot cpus="$ncpus" driver="$(cat $cf/policy0/scaling_driver 2>/dev/null || echo none)"
for n in $(policies); do
  p=$cf/policy$n
  say policy n="$n" related="$(commas $p/related_cpus)" freqs="$(commas $p/scaling_available_frequencies)" \
      min="$(cat $p/cpuinfo_min_freq)" max="$(cat $p/cpuinfo_max_freq)" governor="$(cat $p/scaling_governor)"
done
say policies-done
ack

if [ "$MODE" = control ]; then
  # One CPU only: without the mirror every tick of a busy CPU is a round trip to the daemon under
  # QEMU's BQL, and with all 16 vCPUs of a big profile ticking that would crawl.
  load 1 0
  say control-done
  ack
  # Then the host stops the daemon: the driver's registers must read what they read before, the
  # capacity register of CPU 0's util-hint window (never read before) 0, and the ticks go on.
  say registers-live $(registers) capacity="$(reg 0x400014)"
  ack
  say registers-gone $(registers) capacity="$(reg 0x400014)"
  load 1 0
  say control-gone-done
  poweroff -f
fi

# The userspace governor: one scaling_setspeed per policy, written from the policy's own CPU.
for n in $(policies); do echo userspace >"$cf/policy$n/scaling_governor"; done
say userspace-ready
ack
for n in $(policies); do
  p=$cf/policy$n
  cur=$(cat $p/scaling_cur_freq)
  freqs=$(commas $p/scaling_available_frequencies | tr ',' ' ')
  max=$(cat $p/cpuinfo_max_freq)
  # A table entry the policy is not at now (the core skips a request for the current frequency);
  # in max-only mode any value up to the maximum.
  if [ -n "$freqs" ]; then set -- $freqs; candidates="${2:-$1} ${3:-$1} $1"; else candidates="$((max / 2)) $((max / 3))"; fi
  for khz in $candidates; do [ "$khz" != "$cur" ] && break; done
  taskset -c "$n" sh -c "echo $khz >$p/scaling_setspeed"
  say setspeed policy="$n" cpu="$n" khz="$khz" cur="$(cat $p/scaling_cur_freq)"
  ack
done

# schedutil under a load on every CPU: the driver's fast switch writes set_perf. The guest's own
# evidence is policy->cur (scaling_cur_freq), sampled while the spinners run (the sampling sits
# inside the load, so no sample comes after it: forks are slow with 8 vCPUs on 2 host CPUs).
# stats/total_trans stays 0 with this driver in table mode (it has no ->get, so the core never
# learns a starting frequency to count from).
for n in $(policies); do echo schedutil >"$cf/policy$n/scaling_governor"; done
say schedutil-start
ack
# Sampled with shell builtins only: a fork under this load is slow.
pols=$(policies)
sample() { for n in $pols; do read -r v <"$cf/policy$n/scaling_cur_freq"; samples="$samples $n:$v"; done; }
spin
samples=
for _ in 1 2 3 4 5 6; do sleep 0.25; sample; done
unspin
for n in $(policies); do
  peak=0 seen=
  for l in $samples; do
    [ "${l%%:*}" = "$n" ] || continue
    seen="$seen,${l#*:}"
    [ "${l#*:}" -gt "$peak" ] && peak=${l#*:}
  done
  say schedutil policy="$n" min="$(cat $cf/policy$n/cpuinfo_min_freq)" loaded="$peak" samples="${seen#,}" \
      after="$(cat $cf/policy$n/scaling_cur_freq)"
done
say schedutil-done
ack

# The shared page is RAM both sides map (its header's magic is the daemon's); a store to vCPU 0's
# doorbell completes in QEMU's ioeventfd, a kick the daemon counts.
busybox devmem $((BASE + 0x880000)) 32 1
say registers-live $(registers) magic="$(reg 0x800000)"
ack
# The daemon is gone now (the host stopped it): requests go nowhere, the mirror keeps its values,
# the guest carries on.
for n in $(policies); do
  echo userspace >"$cf/policy$n/scaling_governor"
  taskset -c "$n" sh -c "echo $(cat $cf/policy$n/cpuinfo_max_freq) >$cf/policy$n/scaling_setspeed"
done
load 1
say gone-done $(registers)
poweroff -f
