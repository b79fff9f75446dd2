#!/usr/bin/env bash
# Squash benchmark (issue 2): builds a ~1 GB, 10-layer gzip image once (cached), then measures
# in ONE run: imgslim squash (gzip, zstd, none), single-thread `gzip -dc` of all layers, and an
# umoci squash (unpack + repack into a fresh image, the umoci way to get one layer), plus
# imgslim's peak RSS. Prints figures and ratios against the baselines from the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${IMGSLIM_BENCH_CACHE:-/var/cache/imgslim-bench}
SIZE_MB=${SIZE_MB:-1000}
LAYERS=${LAYERS:-10}
IMG=$CACHE/img-${SIZE_MB}mb-${LAYERS}l
mkdir -p "$CACHE"
if [ ! -f "$IMG/index.json" ]; then
  rm -rf "$IMG.tmp"
  python3 benches/make-image.py "$IMG.tmp" "$LAYERS" "$SIZE_MB"
  mv "$IMG.tmp" "$IMG"
fi
cargo build --release --quiet
BIN=target/release/imgslim
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
sync; cat "$IMG"/blobs/sha256/* > /dev/null   # warm the page cache for every contender

t() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
layers=$(python3 -c "import json,sys;m=json.load(open('$IMG/index.json'))['manifests'][0]['digest'][7:];print(' '.join(l['digest'][7:] for l in json.load(open('$IMG/blobs/sha256/'+m))['layers']))")
gunzip_s=$(t bash -c "for l in $layers; do gzip -dc < '$IMG/blobs/sha256/'\$l; done")
declare -A sq rss
for c in gzip zstd none; do
  /usr/bin/time -v -o "$W/time.$c" "$BIN" squash "$IMG" -o "$W/out-$c" --compression "$c" 2> "$W/err.$c"
  sq[$c]=$(awk -F': ' '/Elapsed \(wall clock\)/ {split($2,a,":"); if (length(a)==3) print a[1]*3600+a[2]*60+a[3]; else print a[1]*60+a[2]}' "$W/time.$c")
  rss[$c]=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time.$c")
  rm -rf "$W/out-$c"
done
umoci_s=$(t bash -c "
  umoci unpack --image '$IMG:latest' '$W/b1' &&
  umoci init --layout '$W/new' && umoci new --image '$W/new:sq' &&
  umoci unpack --image '$W/new:sq' '$W/b2' && rm -rf '$W/b2/rootfs' && mv '$W/b1/rootfs' '$W/b2/rootfs' &&
  umoci repack --image '$W/new:sq' '$W/b2'")
comp=$(du -sb "$IMG/blobs" | cut -f1)
printf '\nimage: %s layers, %d MB compressed (%s)\n' "$LAYERS" $((comp/1000000)) "$IMG"
printf '%-36s %8s %10s\n' "what" "seconds" "vs gunzip"
printf '%-36s %8.2f %10s\n' "gzip -dc of all layers (1 thread)" "$gunzip_s" "1.00x"
for c in gzip zstd none; do
  printf '%-36s %8.2f %9.2fx   peak RSS %d MB\n' "imgslim squash --compression $c" "${sq[$c]}" "$(echo "${sq[$c]} / $gunzip_s" | bc -l)" $((rss[$c]/1024))
done
printf '%-36s %8.2f %9.2fx\n' "umoci unpack + repack (squash)" "$umoci_s" "$(echo "$umoci_s / $gunzip_s" | bc -l)"
printf '\nimgslim (gzip) is %.1fx faster than umoci\n' "$(echo "$umoci_s / ${sq[gzip]}" | bc -l)"
