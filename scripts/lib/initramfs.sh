# shellcheck shell=bash
# Small initramfs images for the QEMU guests the proofs boot: busybox-static, an /init of the
# caller's, and whatever files the caller copies in. Source scripts/lib/debian-archive.sh first.
#
#   initramfs_busybox ARCH          path of a cached static busybox for ARCH (amd64, arm64)
#   initramfs_skeleton DIR ARCH     DIR gets bin/busybox, its applet links, the mount points
#   initramfs_pack DIR OUT          newc cpio, gzip -1 (about 1 s for 70 MB)
#
# The standard /init preamble (mounts, lo up) is initramfs_init_preamble; a caller's /init is
#   #!/bin/sh
#   <preamble>
#   ... the test ...
#   poweroff -f

initramfs_busybox() {
  local arch=$1 out="$VCPUFREQ_CACHE/initramfs/busybox-$1" deb tmp
  if [ ! -x "$out" ]; then
    mkdir -p "$VCPUFREQ_CACHE/initramfs"
    archive_update foreign >&2 || return 1
    deb=$(archive_download "busybox-static:$arch") || return 1
    tmp=$(mktemp -d)
    dpkg-deb -x "$deb" "$tmp"
    install -m 0755 "$(find "$tmp" -path '*bin/busybox' -type f | head -n1)" "$out.tmp" && mv "$out.tmp" "$out"
    rm -rf "$tmp"
  fi
  echo "$out"
}

initramfs_skeleton() {
  local dir=$1 arch=$2 bb applet
  bb=$(initramfs_busybox "$arch") || return 1
  mkdir -p "$dir"/{bin,sbin,dev,proc,sys,tmp,run,etc,root,mnt}
  install -m 0755 "$bb" "$dir/bin/busybox"
  # The applets the guests' /init scripts use (busybox --install would need the guest to run it).
  for applet in sh ash mount umount mkdir cat echo ls ln cp mv rm sleep ip ifconfig poweroff reboot \
                grep sed awk tr head tail wc cut sort uniq find xargs dmesg printf test '[' true false \
                chmod chown kill ps seq date env id uname hostname dd od hexdump stat timeout nproc \
                taskset nice renice insmod modprobe lsmod xzcat gzip gunzip zcat tee basename dirname; do
    ln -sf busybox "$dir/bin/$applet"
  done
  ln -sf ../bin/busybox "$dir/sbin/poweroff"
}

initramfs_init_preamble() {
  cat <<'EOF'
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /sys/fs/cgroup /sys/fs/bpf /sys/kernel/tracing 2>/dev/null
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
EOF
}

initramfs_pack() {
  local dir=$1 out=$2
  (cd "$dir" && find . | cpio -o -H newc --quiet | gzip -1 >"$out.tmp") && mv "$out.tmp" "$out"
}
