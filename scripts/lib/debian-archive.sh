# shellcheck shell=bash
# Debian packages from suites other than the machine's own, without touching its apt configuration.
#
# Two private apt configurations live under $VCPUFREQ_CACHE/apt (default /var/cache/vcpufreq/apt),
# each with its own sources list, lists and cache directories:
#   foreign  bookworm (+ updates, security), bookworm-backports, trixie, trixie-backports (+ deb-src), amd64 and arm64: for
#            `apt-get download` / `apt-get source` only. Nothing from it is ever installed.
#   system   bookworm and bookworm-backports, the machine's own arch: the only one used to install
#            (a backported QEMU), so a trixie package can never reach this bookworm system.
# The mirror is the one the machine already uses. Source this file; every function prints what it
# does on stderr, and fails with a message naming what is missing.

: "${VCPUFREQ_CACHE:=/var/cache/vcpufreq}"
archive_root="$VCPUFREQ_CACHE/apt"

archive_mirror() {
  local m
  m=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
      | grep -v security | head -n1 | tr -d ' ')
  echo "${m:-http://deb.debian.org/debian}"
}

archive_security_mirror() {
  local m
  m=$(grep -rhoE 'https?://[^ ]+/debian-security/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
      | head -n1 | tr -d ' ')
  echo "${m:-http://deb.debian.org/debian-security}"
}

# archive_config NAME -> prints the apt -o options of that private configuration, creating it.
archive_config() {
  local name=$1 dir="$archive_root/$1" mirror
  mirror=$(archive_mirror)
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/debs"
  case "$name" in
    foreign)
      printf '%s\n' \
        "deb [arch=amd64,arm64] $mirror trixie main" \
        "deb [arch=amd64,arm64] $mirror trixie-backports main" \
        "deb [arch=amd64,arm64] $mirror bookworm-backports main" \
        "deb [arch=amd64,arm64] $mirror bookworm main" \
        "deb [arch=amd64,arm64] $mirror bookworm-updates main" \
        "deb [arch=amd64,arm64] $(archive_security_mirror) bookworm-security main" \
        "deb-src $mirror trixie-backports main" \
        "deb-src $mirror bookworm-backports main" >"$dir/sources.list.new"
      ;;
    system)
      printf '%s\n' "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
        "deb $(archive_security_mirror) bookworm-security main" \
        "deb $mirror bookworm-backports main" >"$dir/sources.list.new"
      ;;
    *) echo "archive: unknown configuration $name" >&2; return 2 ;;
  esac
  cmp -s "$dir/sources.list.new" "$dir/sources.list" 2>/dev/null || { mv "$dir/sources.list.new" "$dir/sources.list"; rm -f "$dir/updated"; }
  rm -f "$dir/sources.list.new"
  local opts=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$dir/lists"
              -o "Dir::Cache=$dir/cache" -o APT::Sandbox::User=root
              # Keep the binary caches: images that set them to "" (docker's apt config) make every
              # apt-cache call rebuild them from the lists (~5 s each instead of ~20 ms).
              -o "Dir::Cache::pkgcache=$dir/cache/pkgcache.bin" -o "Dir::Cache::srcpkgcache=$dir/cache/srcpkgcache.bin")
  [ "$name" = foreign ] && opts+=(-o APT::Architectures::=amd64 -o APT::Architectures::=arm64)
  printf '%s\n' "${opts[@]}"
}

# archive_update NAME: refresh that configuration's package lists when older than a day (or absent).
archive_update() {
  local name=$1 dir="$archive_root/$1" opts
  mapfile -t opts < <(archive_config "$name")
  if [ -n "$(find "$dir/updated" -mmin -1440 2>/dev/null)" ]; then return 0; fi
  echo "archive: updating the $name package lists ($(archive_mirror))" >&2
  if flock "$dir/lock" apt-get "${opts[@]}" -qq update >&2; then touch "$dir/updated"; return 0; fi
  if [ -e "$dir/updated" ]; then echo "archive: update failed; using the lists from $(date -r "$dir/updated")" >&2; return 0; fi
  echo "archive: cannot reach the Debian archive at $(archive_mirror) and no lists are cached" >&2
  return 1
}

# archive_apt NAME ARGS...: apt-get with that configuration.
archive_apt() {
  local name=$1 opts; shift
  mapfile -t opts < <(archive_config "$name")
  apt-get "${opts[@]}" "$@"
}

# archive_cache NAME ARGS...: apt-cache with that configuration.
archive_cache() {
  local name=$1 opts; shift
  mapfile -t opts < <(archive_config "$name")
  apt-cache "${opts[@]}" "$@"
}

# archive_newest REGEX [ARCH]: the newest package name (of the foreign lists) matching REGEX, e.g.
# '^linux-binary-7\.3\.[0-9.]+\+deb13-amd64$'. Versions compare as Debian versions of the names' release.
archive_newest() {
  local re=$1 arch=${2:-amd64} names
  mapfile -t names < <(archive_cache foreign pkgnames 2>/dev/null | grep -E "$re")
  ((${#names[@]})) || return 0
  # One apt-cache call for every candidate (a call per name took seconds each).
  archive_cache foreign show "${names[@]/%/:$arch}" 2>/dev/null \
    | awk '/^Package:/{p=$2} /^Version:/{print $2, p}' | sort -V | tail -n1 | cut -d' ' -f2
}

# archive_download PKG[:ARCH]...: the .deb of each package in $archive_root/foreign/debs; prints each path.
# A package already there is not downloaded again.
archive_download() {
  local dir="$archive_root/foreign/debs" p name arch ver f
  for p in "$@"; do
    name=${p%%:*}; arch=amd64; [[ $p == *:* ]] && arch=${p##*:}
    ver=$(archive_cache foreign show "$name:$arch" 2>/dev/null | awk '/^Version:/{print $2; exit}')
    if [ -z "$ver" ]; then echo "archive: package $name ($arch) is in none of bookworm, bookworm-backports, trixie, trixie-backports" >&2; return 1; fi
    f=$(ls "$dir/${name}_${ver//:/%3a}_${arch}.deb" "$dir/${name}_${ver#*:}_${arch}.deb" 2>/dev/null | head -n1)
    if [ -z "$f" ]; then
      echo "archive: downloading $name $ver ($arch)" >&2
      (cd "$dir" && flock "$archive_root/foreign/lock" apt-get $(archive_config foreign) -qq download "$name:$arch=$ver" >&2) \
        || { echo "archive: download of $name failed" >&2; return 1; }
      f=$(ls -t "$dir/${name}_"*"_${arch}.deb" | head -n1)
    fi
    echo "$f"
  done
}

# archive_install_backports PKG...: install system-wide from bookworm-backports (and bookworm for
# dependencies) when not installed yet. Needs root.
archive_install_backports() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status} ${Version}\n' "$p" 2>/dev/null | grep -q "install ok installed .*bpo12" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  archive_update system || return 1
  echo "archive: installing ${missing[*]} from bookworm-backports" >&2
  DEBIAN_FRONTEND=noninteractive archive_apt system -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 -t bookworm-backports install "${missing[@]}" >&2
}
