# shellcheck shell=bash
# The arm64 `virt` guest of the SCMI and virtual-cpufreq proofs: QEMU's own device tree, dumped with
# the exact machine options of the run, with a fragment of ours merged in (dtc merges nodes of the
# same path; our properties win). QEMU's CPU nodes are renamed to hex unit addresses so that they
# merge with the fragment's; a fragment with a `cpus` node brings the cpu-map (QEMU's is deleted).
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
  # QEMU names its CPU nodes in decimal (cpu@10 for reg 0xa); ours, like the DT spec, in hex: renamed
  # here so that both describe the same nodes (otherwise cpu@a and cpu@10 are two CPUs with one reg).
  dtc -q -I dtb -O dts "$tmp/qemu.dtb" \
    | awk '/^\t\tcpu@[0-9]+ \{$/ { n = substr($1, 5) + 0; printf "\t\tcpu@%x {\n", n; next } { print }' >"$tmp/qemu.dts"
  {
    cat "$tmp/qemu.dts"; echo
    # A fragment with its own CPUs brings its cpu-map: QEMU's (socket0/cluster0 with every CPU) is
    # deleted first, or the kernel, which prefers sockets, would never read the fragment's clusters.
    if grep -qE '^[[:space:]]*cpus[[:space:]]*\{' "$fragment"; then
      echo "// QEMU's cpu-map, replaced by the fragment's"
      echo "/ { cpus { /delete-node/ cpu-map; }; };"
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
