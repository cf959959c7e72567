# shellcheck shell=bash
# The arm64 `virt` guest of the SCMI and virtual-cpufreq proofs: QEMU's own device tree, dumped with
# the exact machine options of the run, with a fragment of ours merged in (dtc merges nodes of the
# same path; our properties win).
#
#   qemu_arm64_dtb OUT.dtb FRAGMENT.dts QEMU_ARGS...
#       QEMU_ARGS are the machine options of the real run (-M, -cpu, -smp, -m, -device ...); the
#       fragment is `vcpufreq topology dt` output (its /dts-v1/ line is dropped) or any dts text.

qemu_arm64_dtb() {
  local out=$1 fragment=$2 tmp; shift 2
  tmp=$(mktemp -d)
  if ! qemu-system-aarch64 "$@" -machine dumpdtb="$tmp/qemu.dtb" -nographic >"$tmp/dump.log" 2>&1 \
      || [ ! -s "$tmp/qemu.dtb" ]; then
    echo "qemu-arm64: QEMU could not dump its device tree:" >&2; cat "$tmp/dump.log" >&2; rm -rf "$tmp"; return 1
  fi
  dtc -q -I dtb -O dts -o "$tmp/qemu.dts" "$tmp/qemu.dtb"
  { cat "$tmp/qemu.dts"; echo; echo "// merged from $fragment"; grep -v '^/dts-v1/;' "$fragment"; } >"$tmp/merged.dts"
  if ! dtc -q -I dts -O dtb -o "$out" "$tmp/merged.dts" 2>"$tmp/dtc.log"; then
    echo "qemu-arm64: the merged device tree does not compile (source kept in $tmp/merged.dts):" >&2
    cat "$tmp/dtc.log" >&2; return 1
  fi
  cp "$tmp/merged.dts" "${out%.dtb}.dts"
  rm -rf "$tmp"
}
