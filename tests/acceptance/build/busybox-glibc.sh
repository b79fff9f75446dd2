#!/usr/bin/env bash
# busybox-glibc: the official OCI layout exactly as shipped (copied, not rebuilt).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1
src=${IMGSLIM_ACCEPT_IMAGES:-$ACCEPT_DIR/../../../shared/images}/busybox-1.38.0-glibc.oci
[[ -f $src/index.json ]] || die "missing $src"
cp -a "$src" "$w/oci"
skopeo copy -q "oci:$w/oci:busybox:1.38.0-glibc" "docker-archive:$w/docker-archive.tar:busybox:1.38.0-glibc"
