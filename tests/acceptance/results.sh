#!/usr/bin/env bash
# Print the acceptance results table from the result.tsv files run.sh wrote.
#   usage: results.sh [RESULTS_DIR]   (default $IMGSLIM_ACCEPT_RESULTS or <repo>/target/acceptance)
# Sizes: uncompressed = sum of layer tar sizes, compressed = sum of layer blob sizes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-${IMGSLIM_ACCEPT_RESULTS:-$here/../../target/acceptance}}
shopt -s nullglob
files=("$dir"/*/result.tsv)
((${#files[@]})) || { echo "no results in $dir" >&2; exit 1; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
printf '%-18s %-13s %6s %10s %10s %10s %10s %7s %7s %8s %-14s\n' image variant layers orig-MB orig-gz-MB proc-MB proc-gz-MB factor proc-s probes verdict
rc=0
for f in "${files[@]}"; do
    IFS=$'\t' read -r name variant ou oc ol pu pc pl secs passed total verdict <"$f"
    factor=$(awk -v a="$ou" -v b="$pu" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
    printf '%-18s %-13s %2s->%-2s %10s %10s %10s %10s %7s %7s %8s %-14s\n' "$name" "$variant" "$ol" "$pl" \
        "$(mb "$ou")" "$(mb "$oc")" "$(mb "$pu")" "$(mb "$pc")" "$factor" "${secs:--}" "$passed/$total" "$verdict"
    # selftest-* variants are deliberately broken images: they must FAIL.
    if [[ $variant == selftest-* ]]; then [[ $verdict != PASS ]] || rc=1; else [[ $verdict == PASS ]] || rc=1; fi
done
exit $rc
