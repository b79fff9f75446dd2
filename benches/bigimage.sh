#!/usr/bin/env bash
# Big-image benchmark (issue 13). Builds (once, cached) a 20-layer gzip image of 4 GB and 200k
# files at --scale 1 (benches/make-bigimage.py), plus the same at a quarter of the scale, and
# reports in ONE run, as ratios against baselines from the same run:
#   - imgslim squash (gzip) time against single-thread `gzip -dc` of the layers, and against
#     `pigz -p 2 -6` of the same (squashed) tar; target ≤ 1.5x the gunzip time on 2 cores;
#   - its gzip output size against `gzip -6` of the same tar (target ≤ 1.00x);
#   - peak RSS of squash and slim at both sizes (target ≤ 256 MB, not growing with size);
#   - slim time against squash time.
# The machine's load (uptime) is printed beside every timed figure.
#   usage: benches/bigimage.sh [--scale S]    (S=0.05 is a quick run: 200 MB, 10k files)
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=1
[ "${1:-}" = "--scale" ] && SCALE=$2
CACHE=${IMGSLIM_BENCH_CACHE:-/var/cache/imgslim-bench}
BIN=${IMGSLIM_BIN:-target/release/imgslim}
SMALL=$(echo "$SCALE / 4" | bc -l | sed 's/^\./0./; s/0*$//')
mkdir -p "$CACHE"
image() {  # image SCALE -> path (built once)
  local img=$CACHE/big-$1
  if [ ! -f "$img/index.json" ]; then
    python3 benches/make-bigimage.py "$img.tmp" --scale "$1" >&2
    rm -rf "$img" && mv "$img.tmp" "$img"
  fi
  echo "$img"
}
BIG=$(image "$SCALE")
SMALLIMG=$(image "$SMALL")
[ -n "${IMGSLIM_BIN:-}" ] || cargo build --release --quiet
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

load() { cut -d' ' -f1 /proc/loadavg; }
# timed NAME CMD...: wall seconds, peak RSS (KB) and the load before the run go to $W/NAME.*
timed() {
  local n=$1; shift
  load > "$W/$n.load"
  /usr/bin/time -f '%e %M %U %S' -o "$W/$n.time" "$@" > /dev/null 2> "$W/$n.err" || { cat "$W/$n.err" >&2; exit 1; }
}
secs() { cut -d' ' -f1 "$W/$1.time"; }
cpu() { awk '{print $3 + $4}' "$W/$1.time"; }
rss_mb() { echo $(( $(cut -d' ' -f2 "$W/$1.time") / 1024 )); }
ratio() { printf '%.2fx' "$(echo "$1 / $2" | bc -l)"; }
layers() { python3 -c "import json,sys;d='$1/blobs/sha256/';m=json.load(open('$1/index.json'))['manifests'][0]['digest'][7:];print(' '.join(d+l['digest'][7:] for l in json.load(open(d+m))['layers']))"; }

for s in big small; do
  img=$BIG; [ $s = small ] && img=$SMALLIMG
  sync; cat "$img"/blobs/sha256/* > /dev/null   # warm the page cache for every contender
  timed "gunzip-$s" bash -c "for l in $(layers "$img"); do gzip -dc < \$l; done"
  timed "squash-$s" "$BIN" squash "$img" -o "$W/sq-$s" --format oci
  timed "slim-$s" "$BIN" slim "$img" -o "$W/slim-$s" --format oci
done
# The same tar as imgslim's squashed layer, for pigz and gzip -6.
gzip -dc < "$(layers "$W/sq-big")" > "$W/squashed.tar"
timed pigz bash -c "pigz -p 2 -6 < '$W/squashed.tar'"
ours=$(stat -c %s "$(layers "$W/sq-big")")
g6=$(gzip -6 < "$W/squashed.tar" | wc -c)

gb() { printf '%.2f' "$(echo "$1 / 1000000000" | bc -l)"; }
printf '\nimage (scale %s): 20 layers, %s GB compressed, squashed tar %s GB; quarter-size image (scale %s): %s GB compressed\n' \
  "$SCALE" "$(gb "$(du -sb "$BIG/blobs" | cut -f1)")" "$(gb "$(stat -c %s "$W/squashed.tar")")" "$SMALL" "$(gb "$(du -sb "$SMALLIMG/blobs" | cut -f1)")"
printf '%-40s %8s %10s %9s %6s %8s\n' what seconds ratio "peak RSS" load "CPU s"
row() { printf '%-40s %8.2f %10s %6s MB %6s %8.2f\n' "$1" "$(secs "$2")" "$3" "$4" "$(cat "$W/$2.load")" "$(cpu "$2")"; }
row "gzip -dc of all layers (1 thread)" gunzip-big "1.00x" "-"
row "imgslim squash (gzip) vs gunzip" squash-big "$(ratio "$(secs squash-big)" "$(secs gunzip-big)")" "$(rss_mb squash-big)"
row "pigz -p 2 -6 of the squashed tar" pigz "$(ratio "$(secs pigz)" "$(secs gunzip-big)")" "-"
row "imgslim squash vs pigz -p 2 -6" squash-big "$(ratio "$(secs squash-big)" "$(secs pigz)")" "$(rss_mb squash-big)"
row "imgslim slim vs squash" slim-big "$(ratio "$(secs slim-big)" "$(secs squash-big)")" "$(rss_mb slim-big)"
row "quarter size: squash vs its gunzip" squash-small "$(ratio "$(secs squash-small)" "$(secs gunzip-small)")" "$(rss_mb squash-small)"
row "quarter size: slim vs its squash" slim-small "$(ratio "$(secs slim-small)" "$(secs squash-small)")" "$(rss_mb slim-small)"
printf 'CPU time (user+sys, less sensitive to load): squash %s of gunzip, pigz %s of gunzip\n' \
  "$(ratio "$(cpu squash-big)" "$(cpu gunzip-big)")" "$(ratio "$(cpu pigz)" "$(cpu gunzip-big)")"
printf 'squashed gzip layer size vs gzip -6 of the same tar: %s (%d vs %d bytes)\n' "$(ratio "$ours" "$g6")" "$ours" "$g6"
printf 'peak RSS, full vs quarter size: squash %s MB vs %s MB, slim %s MB vs %s MB (target <= 256 MB)\n' \
  "$(rss_mb squash-big)" "$(rss_mb squash-small)" "$(rss_mb slim-big)" "$(rss_mb slim-small)"
