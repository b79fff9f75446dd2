#!/usr/bin/env bash
# Tracer overhead, side by side (not a timed test). Two workloads, four ways each:
#   untraced | imgslim (ptrace + seccomp RET_TRACE on file syscalls) |
#   strace -f -e trace=%file | strace -f --seccomp-bpf -e trace=%file
# Workloads: 1M getppid + 40k stat (syscall-heavy, few file calls), and a Python
# import-heavy start-up. Overhead = traced - untraced; ratios against strace's overheads.
# Then the tracer's peak RSS on a trace of 100k events.
# Usage: benches/trace.sh [IMGSLIM]   (default: target/release/imgslim, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/imgslim}
[ -x "$BIN" ] || cargo build --release
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

cat > "$W/sys.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>
int main(int argc, char **argv) {
    if (argc > 1) { /* N opens of a missing file: a trace of N events */
        long n = atol(argv[1]);
        for (long i = 0; i < n; i++) open("/nonexistent/x", O_RDONLY);
        return 0;
    }
    for (long i = 0; i < 1000000; i++) getppid();
    struct stat st;
    for (long i = 0; i < 40000; i++) stat("/etc/passwd", &st);
    return 0;
}
C
gcc -O2 -o "$W/sys" "$W/sys.c"
PY=(python3 -c "import json, email.parser, http.client, xml.etree.ElementTree, decimal, asyncio, unittest, argparse, logging, sqlite3, csv, tarfile, zipfile")

secs() { # best of 3 wall-clock seconds of "$@"
  local best=999999
  for _ in 1 2 3; do
    local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N)
    best=$(python3 -c "print(min($best, $t1 - $t0))")
  done
  echo "$best"
}

row() { # name, untraced, imgslim, strace, strace-seccomp
  python3 - "$@" <<'P'
import sys
n, u, i, s, b = sys.argv[1], *map(float, sys.argv[2:])
oi, os_, ob = i - u, s - u, b - u
print(f"{n:<22} untraced {u:7.3f}s  imgslim {i:7.3f}s  strace {s:7.3f}s  strace-seccomp {b:7.3f}s")
print(f"{'':<22} overhead: imgslim {oi:+.3f}s  strace {os_:+.3f}s  strace-seccomp {ob:+.3f}s")
print(f"{'':<22} imgslim/strace overhead = {oi/os_ if os_ > 0 else float('nan'):.3f}  (target <= 0.1)   "
      f"imgslim/strace-seccomp overhead = {oi/ob if ob > 0 else float('nan'):.2f}  (target <= 1)   traced/untraced = {i/u:.2f}x")
P
}

bench() { # name, command...
  local name=$1; shift
  local u i s b
  u=$(secs "$@")
  i=$(secs "$BIN" trace-host -o "$W/t.json" -- "$@")
  s=$(secs strace -f -qq -e trace=%file -o /dev/null "$@")
  b=$(secs strace -f -qq --seccomp-bpf -e trace=%file -o /dev/null "$@")
  row "$name" "$u" "$i" "$s" "$b"
}

bench "getppid1M+stat40k" "$W/sys"
bench "python import start-up" "${PY[@]}"

rss=$( { /usr/bin/time -f %M "$BIN" trace-host -o "$W/big.json" -- "$W/sys" 100000 >/dev/null; } 2>&1 | tail -1)
events=$(grep -c '"syscall"' "$W/big.json")
echo "tracer peak RSS on $events events: $((rss / 1024)) MB (target <= 64 MB)"
