#!/bin/sh
# Build (once) a Debian bookworm minbase rootfs with a few extra shared-library
# packages, used as real-world data for the ELF closure tests.
# Usage: build-glibc-rootfs.sh CACHE_PARENT KEY EXTRA_PACKAGES...
# Result: CACHE_PARENT/KEY (complete; built in a temp dir then renamed, so an
# interrupted build never leaves a half rootfs behind under the final name).
set -eu
parent=$1; key=$2; shift 2
final="$parent/$key"
[ -f "$final/.imgslim-complete" ] && exit 0
mkdir -p "$parent"
# Several tests (or test processes) may ask at once: build once, the others wait.
exec 9>"$parent/.$key.lock"
flock 9
[ -f "$final/.imgslim-complete" ] && exit 0
rm -rf "$final" # a leftover without the completion marker
tmp=$(mktemp -d "$parent/.build-$key.XXXXXX")
cleanup() {
    umount "$tmp/proc" 2>/dev/null || true
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
debootstrap --variant=minbase bookworm "$tmp" http://deb.debian.org/debian >"$parent/$key.debootstrap.log" 2>&1 \
    || { tail -30 "$parent/$key.debootstrap.log" >&2; exit 1; }
if [ $# -gt 0 ]; then
    mount -t proc proc "$tmp/proc"
    chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" \
        >"$parent/$key.apt.log" 2>&1 || { tail -30 "$parent/$key.apt.log" >&2; exit 1; }
    chroot "$tmp" apt-get clean
    umount "$tmp/proc"
fi
touch "$tmp/.imgslim-complete"
mv -T "$tmp" "$final"
trap - EXIT
