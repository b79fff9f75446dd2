#!/usr/bin/env bash
# Figures for `imgslim pack` (issue 5). Not a timed test: prints a table.
#
#   benches/pack.sh            # Go (static), Rust, python3 (dynamic C); node too if installed
#   RUNS=50 benches/pack.sh    # more startup samples
#   BIG=1 benches/pack.sh      # also the ~100 MB node binary (slow to pack)
#
# For each binary: packed/original (ours), xz -9e and zstd -19 --long of the same
# file (the practical floor / the fast-decode alternative), UPX's published ratio
# (shared/reference/peer-tools.md §5.3), decompression time of the reference
# xz/zstd/gzip CLIs, startup median of `--version` (original and packed run
# interleaved), the added startup over one-core `zstd -dc` of the file, and
# max RSS (/usr/bin/time -v). Needs: cargo, go, python3, xz, zstd, gzip;
# optional: node. Exit status of `--version` is ignored (e.g. `go` rejects it; startup is still measured).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

cargo build --release --quiet
IMGSLIM=$PWD/target/release/imgslim
pack_cmd() { "$IMGSLIM" pack "$@"; }

# --- inputs -------------------------------------------------------------
mkdir -p "$W/orig" "$W/lzma" "$W/zstd" "$W/gohome"
cat > "$W/hello.go" <<'GO'
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println("hello 1.0")
		return
	}
	fmt.Println("hello", os.Args)
}
GO
# Stripped like UPX's published Go numbers (`-s -w`).
(cd "$W" && HOME="$W/gohome" GOCACHE="$W/gohome/c" GOPATH="$W/gohome/p" GO111MODULE=off CGO_ENABLED=0 \
    go build -ldflags='-s -w' -o "$W/orig/go-hello" hello.go)
declare -a NAMES=(go-hello)
declare -A UPX=( [go-hello]="37.8% (Go hello -s -w, --best)" )
if [ -x /usr/lib/go-1.19/bin/go ] || command -v go >/dev/null; then
    cp "$(readlink -f "$(command -v go)")" "$W/orig/go-tool"; NAMES+=(go-tool)
    UPX[go-tool]="28.5% (juju Go, -9)"
fi
RUSTBIN=$(readlink -f "$(command -v rustup 2>/dev/null || true)" 2>/dev/null || true)
if [ -n "$RUSTBIN" ] && [ -f "$RUSTBIN" ]; then cp "$RUSTBIN" "$W/orig/rustup"; NAMES+=(rustup); UPX[rustup]="23.3% (min-sized-rust, --best --lzma)"; fi
cp target/release/imgslim "$W/orig/imgslim"; NAMES+=(imgslim); UPX[imgslim]="23.3% (min-sized-rust, --best --lzma)"
PY=/usr/bin/python3; [ -e "$PY" ] || PY=$(python3 -c 'import os,sys;print(os.path.realpath(sys.executable))')
cp "$(readlink -f "$PY")" "$W/orig/python3"; NAMES+=(python3); UPX[python3]="30-50% (vendor claim, C)"
if [ "${BIG:-0}" = 1 ] && command -v node >/dev/null; then
    cp "$(readlink -f "$(command -v node)")" "$W/orig/node"; NAMES+=(node); UPX[node]="n/a (upx#751: 60->377 ms startup)"
fi

pct() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f%%", 100*a/b}'; }
size() { stat -c %s "$1"; }
medians_ms() { # "cmd a" "cmd b" ...: median wall ms of each over $RUNS rounds, run
    # interleaved (a b c a b c ...) so the VM's drift hits all of them alike.
    python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time, statistics
n = int(sys.argv[1]); cmds = [c.split() for c in sys.argv[2:]]; t = [[] for _ in cmds]
for r in range(n + 3):
    for i, c in enumerate(cmds):
        s = time.perf_counter(); subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r >= 3: t[i].append(time.perf_counter() - s)  # 3 warm-up rounds
print(" ".join("%.1f" % (1000 * statistics.median(x)) for x in t))
PY
}
maxrss_kb() { { /usr/bin/time -v "$@" 2>&1 >/dev/null || true; } | awk -F: '/Maximum resident/{gsub(/ /,"",$2); print $2}'; }
dtime_ms() { # decompress command (stdin file) → median of 5, ms
    python3 - "$@" <<'PY'
import subprocess, sys, time, statistics
t = []
for _ in range(5):
    s = time.perf_counter(); subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); t.append(time.perf_counter() - s)
print("%.0f" % (1000 * statistics.median(t)))
PY
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r); runs=$RUNS"
echo
echo "packed size / original (pack_s = seconds to pack, default level)"
printf '%-13s %9s | %-7s %6s | %-7s %6s | %-7s %-7s %-7s | %s\n' binary orig lzma pack_s zstd pack_s "xz-9e" "zstd19" "gzip-9" "UPX published"
for n in "${NAMES[@]}"; do
    f=$W/orig/$n
    s=$(date +%s.%N); pack_cmd --any-size --allow-larger --pack-method lzma "$f" -o "$W/lzma/$n" 2>/dev/null; e=$(date +%s.%N)
    pack_cmd --any-size --allow-larger --pack-method zstd "$f" -o "$W/zstd/$n" 2>/dev/null; e2=$(date +%s.%N)
    xz -9e -T1 -k -c "$f" > "$W/$n.xz"; zstd -q -19 --long=27 -c "$f" > "$W/$n.zst"; gzip -9 -c "$f" > "$W/$n.gz"
    o=$(size "$f")
    printf '%-13s %9d | %-7s %6.1f | %-7s %6.1f | %-7s %-7s %-7s | %s\n' "$n" "$o" \
        "$(pct "$(size "$W/lzma/$n")" "$o")" "$(awk -v s="$s" -v e="$e" 'BEGIN{print e-s}')" \
        "$(pct "$(size "$W/zstd/$n")" "$o")" "$(awk -v s="$e" -v e="$e2" 'BEGIN{print e-s}')" \
        "$(pct "$(size "$W/$n.xz")" "$o")" "$(pct "$(size "$W/$n.zst")" "$o")" "$(pct "$(size "$W/$n.gz")" "$o")" "${UPX[$n]}"
done

echo
echo "decompression of the whole file with the reference C tools (ms, median of 5): the codec choice"
printf '%-13s %7s %7s %7s\n' binary xz zstd gzip
for n in "${NAMES[@]}"; do
    printf '%-13s %7s %7s %7s\n' "$n" "$(dtime_ms xz -dc "$W/$n.xz")" "$(dtime_ms zstd -q -dc --long=27 "$W/$n.zst")" "$(dtime_ms gzip -dc "$W/$n.gz")"
done

echo
echo "startup: median wall ms of \`BIN --version\` ($RUNS runs; 1cpu = under taskset -c 0, so the"
echo "stub decodes on one thread), max RSS KiB. auto = the method \`--method auto\` (the default) picks."
echo "+zstd/dec = added zstd startup / one-core \`zstd -dc\` of the whole file, same run: the stub's cost"
echo "in units of this machine's zstd speed (x 50 ms = its figure where zstd decodes 20 MB in 50 ms)."
printf '%-13s %-5s %8s %8s %8s %8s %8s %8s | %8s %8s %8s %8s | %8s %8s %8s\n' binary auto orig_ms lzma_ms +lzma zstd_ms +zstd \
    +zstd/dec orig_1cpu zstd_1cpu +zstd_1cpu lzma_1cpu orig_rss lzma_rss zstd_rss
for n in "${NAMES[@]}"; do
    auto=$(pack_cmd --any-size --allow-larger "$W/orig/$n" -o "$W/auto-$n" 2>&1 | sed -n 's/.*(\(lzma\|zstd\)).*/\1/p')
    # zstd -dc in the same rounds: this VM's speed drifts 2x within minutes.
    read -r a b c zd < <(medians_ms "$W/orig/$n --version" "$W/lzma/$n --version" "$W/zstd/$n --version" \
        "zstd -q -dc --long=27 $W/$n.zst")
    read -r a1 c1 b1 < <(medians_ms "taskset -c 0 $W/orig/$n --version" "taskset -c 0 $W/zstd/$n --version" \
        "taskset -c 0 $W/lzma/$n --version")
    ra=$(maxrss_kb "$W/orig/$n" --version); rb=$(maxrss_kb "$W/lzma/$n" --version); rc=$(maxrss_kb "$W/zstd/$n" --version)
    d() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b-a}'; }
    printf '%-13s %-5s %8s %8s %8s %8s %8s %8s | %8s %8s %8s %8s | %8s %8s %8s\n' "$n" "$auto" "$a" "$b" "$(d "$a" "$b")" \
        "$c" "$(d "$a" "$c")" "$(awk -v a="$a" -v c="$c" -v z="$zd" 'BEGIN{printf "%.2f", (c-a)/z}')" "$a1" "$c1" "$(d "$a1" "$c1")" "$b1" "$ra" "$rb" "$rc"
done
