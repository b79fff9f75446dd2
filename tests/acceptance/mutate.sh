#!/usr/bin/env bash
# Harness self-test helper: copy ORIG to OUT and delete PATHs (inside the
# image) in one extra layer — a deliberately broken "processed" image, so we
# can prove run.sh notices what a bad slim would do (slimtoolkit §5: missing
# CA certificates, config files read at run time).
#   usage: mutate.sh ORIG_LAYOUT OUT_LAYOUT PATH...
set -euo pipefail
. "$(dirname "$0")/lib.sh"
orig=${1:?usage: mutate.sh ORIG OUT PATH...} out=${2:?}; shift 2
need_tools umoci skopeo
skopeo copy -q "oci:$orig" "oci:$out:latest"
b=$(mktemp -d "${TMPDIR:-/var/tmp}/imgslim-mutate-XXXXXX")
accept_on_exit "rm -rf '$b'"
umoci unpack --image "$out:latest" "$b/bundle" >/dev/null
for p in "$@"; do rm -rf "$b/bundle/rootfs/${p#/}"; done
umoci repack --image "$out:latest" "$b/bundle" >/dev/null
umoci gc --layout "$out"
