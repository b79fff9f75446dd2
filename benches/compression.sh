#!/usr/bin/env bash
# The size/speed trade-off of `--compression METHOD:LEVEL` (issue 16). Not a timed test: prints a table.
#
#   benches/compression.sh [IMAGE]   # default: the python-web acceptance image (cached by tests/acceptance)
#   IMGSLIM=target/release/imgslim benches/compression.sh
#
# The image is slimmed once with --compression none; that one-layer image is then squashed with each
# setting, so the time is the layer's compression (plus reading ~the same tar each time). Decoding is
# timed with the reference CLIs (gzip -dc, zstd -dc) on the blob: what a pull costs.
set -euo pipefail
cd "$(dirname "$0")/.."
IMG=${1:-$(ls -d /var/cache/imgslim-accept/python-web-*/docker-archive.tar | head -1)}
IMGSLIM=${IMGSLIM:-$PWD/target/debug/imgslim}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$IMGSLIM" -q slim "$IMG" -o "$W/base" --format oci --compression none
blob() { jq -r '.manifests[0].digest' "$1/index.json" | sed 's/sha256://' | { read -r m; jq -r '.layers[0].digest' "$1/blobs/sha256/$m"; } | sed "s|sha256:|$1/blobs/sha256/|"; }
tar_bytes=$(stat -c %s "$(blob "$W/base")")
printf 'layer tar: %s bytes (%s)\n' "$tar_bytes" "$IMG"
printf '%-9s %12s %7s %8s %9s %9s\n' setting bytes ratio 'write s' 'MB/s' 'decode s'
for c in gzip:1 gzip:6 gzip:9 gzip:12 zstd:1 zstd:3 zstd:9 zstd:19; do
  t0=$(date +%s.%N)
  "$IMGSLIM" -q squash "$W/base" -o "$W/$c" --format oci --compression "$c"
  t1=$(date +%s.%N)
  b=$(blob "$W/$c"); size=$(stat -c %s "$b")
  tool=${c%%:*}
  d0=$(date +%s.%N); "$tool" -dc < "$b" > /dev/null; d1=$(date +%s.%N)
  awk -v c="$c" -v s="$size" -v t="$tar_bytes" -v w="$(echo "$t1 - $t0" | bc)" -v d="$(echo "$d1 - $d0" | bc)" \
    'BEGIN { printf "%-9s %12d %6.1f%% %8.2f %9.1f %9.2f\n", c, s, 100*s/t, w, t/1e6/w, d }'
  rm -rf "${W:?}/$c"
done
