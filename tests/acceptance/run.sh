#!/usr/bin/env bash
# Probe ORIGINAL and PROCESSED with images/NAME.probes and diff the answers
# byte for byte; record sizes and the verdict for results.sh.
#   usage: run.sh ORIGINAL PROCESSED NAME      (each an OCI layout dir or docker-archive .tar)
#   env:   IMGSLIM_ACCEPT_VARIANT   label for the processing step (default "compare")
#          IMGSLIM_ACCEPT_PROCESS_SECONDS  wall time of the processing step, recorded only
#          IMGSLIM_ACCEPT_RESULTS   results dir (default <repo>/target/acceptance)
#          IMGSLIM_ACCEPT_EXACT=1   also compare "exact:" probes (squash, identity)
# Exit 0 only if the original answered every probe and the processed answers are identical.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

orig=${1:?usage: run.sh ORIGINAL PROCESSED NAME} proc=${2:?} name=${3:?}
variant=${IMGSLIM_ACCEPT_VARIANT:-compare}
results=${IMGSLIM_ACCEPT_RESULTS:-$(cd "$ACCEPT_DIR/../.." && pwd)/target/acceptance}
probes=$ACCEPT_DIR/images/$name.probes
[[ -f $probes ]] || die "no probes file $probes"
dir=$results/$name.$variant
# Only our own outputs: the caller may keep the processed image inside $dir.
rm -rf "$dir/original" "$dir/processed" "$dir/result.tsv"; mkdir -p "$dir"

sizes_of() { # IMAGE -> "unc comp layers"
    if [[ -f $1 ]]; then
        local t; t=$(mktemp -d "${TMPDIR:-/var/tmp}/imgslim-sizes-XXXXXX")
        skopeo copy -q "docker-archive:$1" "oci:$t/oci:latest" >&2
        image_sizes "$t/oci"; rm -rf "$t"
    else image_sizes "${1%%:*}"; fi
}

# The original's answers depend only on the image, the probe set and the probe scripts: every
# variant of an image shares one probing of the original (a failed one is not kept).
key=$({ echo "$orig ${IMGSLIM_ACCEPT_EXACT:-0} ${IMGSLIM_ACCEPT_MINIMAL:-0}"; cat "$probes" "$ACCEPT_DIR/probe.sh" "$ACCEPT_DIR/lib.sh"; } | sha256sum | cut -c1-16)
shared=$results/$name.original-$key
orig_ok=1
exec 8>"$shared.lock"; flock 8
if [[ ! -f $shared/_done ]]; then
    rm -rf "$shared"
    if "$ACCEPT_DIR/probe.sh" "$orig" "$probes" "$shared"; then touch "$shared/_done"; else orig_ok=0; fi
fi
exec 8>&-
cp -r "$shared" "$dir/original"
proc_ok=1
"$ACCEPT_DIR/probe.sh" "$proc" "$probes" "$dir/processed" || proc_ok=0

total=$(cat "$dir/original/_total" 2>/dev/null || echo 0) passed=0 differ=()
for f in "$dir"/original/*.out; do
    b=$(basename "$f")
    if cmp -s "$f" "$dir/processed/$b"; then passed=$((passed + 1)); else differ+=("$b"); fi
done
read -r ou oc ol < <(sizes_of "$orig")
read -r pu pc pl < <(sizes_of "$proc")
verdict=PASS
((orig_ok)) || verdict=FAIL-ORIGINAL
((${#differ[@]} == 0)) || verdict=FAIL-DIFF
((passed == total)) || verdict=FAIL-DIFF
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$variant" "$ou" "$oc" "$ol" "$pu" "$pc" "$pl" \
    "${IMGSLIM_ACCEPT_PROCESS_SECONDS:--}" "$passed" "$total" "$verdict" >"$dir/result.tsv"

if ((${#differ[@]})); then
    for b in "${differ[@]}"; do
        echo "--- probe ${b%.out} differs (original vs processed):"
        diff -u --label original --label processed "$dir/original/$b" "$dir/processed/$b" | head -60 || true
        [[ -s $dir/processed/${b%.out}.err ]] && sed 's/^/  processed stderr: /' "$dir/processed/${b%.out}.err" | tail -10
    done
fi
((orig_ok)) || echo "original image did not answer every probe (see $dir/original/*.err, server.log)"
log "$name/$variant: $verdict ($passed/$total probes identical); results in $dir"
[[ $verdict == PASS ]]
