#!/usr/bin/env bash
# Syscalls the daemon makes per request, by path: runs `vcpufreq bench daemon`
# on 1 VM x 8 vCPUs with long sparse-latency phases and attaches `strace -c`
# to the daemon for 2 s in the middle of each path's phase. Needs strace and
# a release build (`swift build -c release`). Prints one table per path.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${VCPUFREQ:-.build/release/vcpufreq}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$binary" bench daemon --shapes 1x8 --no-placement --latency-samples 16000 --seconds 0.5 --out "$work/out" \
    > /dev/null 2> "$work/progress" &
bench=$!
wait_for() { until grep -q "$1" "$work/progress"; do sleep 0.1; kill -0 "$bench" 2> /dev/null || exit 1; done; }
trace() {
    local daemon
    daemon=$(sed -n 's/^daemon pid \([0-9]*\).*/\1/p' "$work/progress" | head -1)
    sleep 1
    timeout -s INT 2 strace -c -p "$daemon" -o "$work/$1.txt" 2> /dev/null || true
    echo "== $1 (2 s, requests ~200 µs apart; each epoll_wait is one wake-up: a request, or a poll on path 3)"
    awk 'NR > 2 && !/^-/ && NF >= 5 { print "  " $NF ": " $4 ($5 ~ /^[0-9]+$/ ? " (" $5 " failed)" : "") }' "$work/$1.txt"
}
wait_for "kick_mode always"; trace "1 register WRITE, util"
wait_for "register WRITE, util:"; trace "2 shared page + kick, util"
wait_for "kick, util:"; trace "2 shared page + kick, util+latency"
wait_for "kick_mode never"; trace "3 shared page polled, util"
wait_for "polled, util:"; trace "3 shared page polled, util+latency"
wait "$bench"
