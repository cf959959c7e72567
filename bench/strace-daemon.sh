#!/usr/bin/env bash
# Syscalls the daemon makes per request, by path: runs `vcpufreq bench daemon`
# on 1 VM x 8 vCPUs, one round, with long sparse-latency phases, and attaches
# `strace -c` to the daemon for 2 s inside each path's latency phase (requests
# ~200 µs apart, the daemon asleep before each). Needs strace and a release
# build (`swift build -c release`). Prints one table per path.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${VCPUFREQ:-.build/release/vcpufreq}
command -v strace > /dev/null || { echo "strace-daemon.sh: strace is not installed (apt-get install strace)" >&2; exit 1; }
work=$(mktemp -d)
bench=
cleanup() { [ -n "$bench" ] && kill "$bench" 2> /dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$binary" bench daemon --shapes 1x8 --rounds 1 --no-placement --latency-samples 16000 --seconds 0.5 --out "$work/out" \
    > /dev/null 2> "$work/progress" &
bench=$!
wait_for() {
    until grep -qF "$1" "$work/progress"; do
        sleep 0.05
        kill -0 "$bench" 2> /dev/null || { echo "the benchmark ended before '$1':" >&2; cat "$work/progress" >&2; exit 1; }
    done
}
trace() {
    local daemon
    wait_for "$1: measuring latency"
    daemon=$(sed -n 's/^daemon pid \([0-9]*\).*/\1/p' "$work/progress" | head -1)
    sleep 0.5
    timeout -s INT 2 strace -c -p "$daemon" -o "$work/trace.txt" 2> /dev/null || true
    echo "== $1 (2 s; each epoll_wait is one wake-up: a request, or a poll on path 3)"
    awk 'NR > 2 && !/^-/ && NF >= 5 { print "  " $NF ": " $4 ($5 ~ /^[0-9]+$/ ? " (" $5 " failed)" : "") }' "$work/trace.txt"
}
trace "1 register WRITE, util"
trace "2 shared page + kick, util"
trace "2 shared page + kick, util+latency"
trace "3 shared page, polled, util"
trace "3 shared page, polled, util+latency"
wait "$bench"
bench=
