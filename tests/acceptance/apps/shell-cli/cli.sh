#!/bin/sh
# shell-cli acceptance app: a word-frequency report over a text file using
# coreutils, sed, awk and gzip; output is deterministic.
set -eu
mode=report
[ "${1:-}" = "--stats" ] && { mode=stats; shift; }
in=${1:-/usr/share/cli/input.txt}
export LC_ALL=C
if [ "$mode" = stats ]; then
  printf 'lines=%s words=%s bytes=%s\n' "$(wc -l <"$in")" "$(wc -w <"$in")" "$(wc -c <"$in")"
  printf 'gzip-sha256=%s\n' "$(gzip -9nc "$in" | sha256sum | cut -d' ' -f1)"
  printf 'md5=%s\n' "$(md5sum <"$in" | cut -d' ' -f1)"
  exit 0
fi
echo "== top words in $(basename "$in")"
tr -cs 'A-Za-z' '\n' <"$in" | tr 'A-Z' 'a-z' | sed '/^$/d' | sort | uniq -c | sort -k1,1nr -k2 | head -8 |
  awk '{ printf "%-12s %3d %s\n", $2, $1, substr("##########################", 1, $1) }'
echo "== reversed title"
head -1 "$in" | rev 2>/dev/null || head -1 "$in" | awk '{ s=""; for (i=length($0); i>0; i--) s=s substr($0,i,1); print s }'
echo "== date"; date -u -d @1700000000 '+%Y-%m-%d %H:%M:%S %A'
echo "== seq"; seq 1 5 | paste -sd+ | tee /dev/stderr 2>/dev/null | bc 2>/dev/null || seq 1 5 | awk '{ s += $1 } END { print s }'
echo "== roundtrip"; gzip -9nc "$in" | gzip -dc | cmp - "$in" && echo identical
echo "== base64"; head -c 48 "$in" | base64
