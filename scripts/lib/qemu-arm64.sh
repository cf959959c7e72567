# shellcheck shell=bash
# The arm64 `virt` guest of the SCMI and virtual-cpufreq proofs: QEMU's own device tree, dumped with
# the exact machine options of the run, with a fragment of ours merged in (dtc merges nodes of the
# same path; our properties win). A fragment with a `cpus` node brings every CPU and the cpu-map:
# QEMU's own are deleted first.
#
#   qemu_arm64_dtb OUT.dtb FRAGMENT.dts QEMU_ARGS...
#       QEMU_ARGS are the machine options of the real run (-M, -cpu, -smp, -m, -device ...); the
#       fragment is `vcpufreq topology dt` output (its /dts-v1/ line is dropped) or any dts text.
#       $QEMU_AARCH64 names the QEMU that dumps (default qemu-system-aarch64: use the run's own).

qemu_arm64_dtb() {
  local out=$1 fragment=$2 tmp; shift 2
  tmp=$(mktemp -d)
  if ! "${QEMU_AARCH64:-qemu-system-aarch64}" "$@" -machine dumpdtb="$tmp/qemu.dtb" -nographic >"$tmp/dump.log" 2>&1 \
      || [ ! -s "$tmp/qemu.dtb" ]; then
    echo "qemu-arm64: QEMU could not dump its device tree:" >&2; cat "$tmp/dump.log" >&2; rm -rf "$tmp"; return 1
  fi
  dtc -q -I dtb -O dts -o "$tmp/qemu.dts" "$tmp/qemu.dtb"
  {
    cat "$tmp/qemu.dts"; echo
    # A fragment with its own CPUs replaces QEMU's: QEMU names them cpu@<decimal index> (cpu@10 has
    # reg 0xa) and adds a socket/cluster cpu-map that the kernel would prefer to the fragment's.
    if grep -qE '^[[:space:]]*cpus[[:space:]]*\{' "$fragment"; then
      echo "// QEMU's CPU nodes and cpu-map, replaced by the fragment's"
      echo "/ { cpus {"
      echo "	/delete-node/ cpu-map;"
      sed -nE 's/^\t\t(cpu@[0-9a-f]+) \{$/\t\/delete-node\/ \1;/p' "$tmp/qemu.dts"
      echo "}; };"
    fi
    echo "// merged from $fragment"; grep -v '^/dts-v1/;' "$fragment"
  } >"$tmp/merged.dts"
  if ! dtc -q -I dts -O dtb -o "$out" "$tmp/merged.dts" 2>"$tmp/dtc.log"; then
    echo "qemu-arm64: the merged device tree does not compile (source kept in $tmp/merged.dts):" >&2
    cat "$tmp/dtc.log" >&2; return 1
  fi
  cp "$tmp/merged.dts" "${out%.dtb}.dts"
  rm -rf "$tmp"
}
