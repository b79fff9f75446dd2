#!/usr/bin/env bash
# Trace an image with imgslim while its own probes (images/NAME.probes) drive it, one trace
# file per container the probes start: the server with its http/exec probes, and each `run`
# probe's fresh container. `imgslim slim --from-trace OUTDIR/*.json` then keeps what they touched.
#   usage: trace.sh IMAGE NAME OUTDIR        (IMAGE: an OCI layout dir)
#   env:   IMGSLIM (the imgslim binary, default: imgslim on PATH)
#          IMGSLIM_ACCEPT_READY_TIMEOUT (s, default 90)
# `exact:` probes are skipped (fingerprints of the whole tree) and so are `tools:` probes (the
# traced variants are minimal images). A `ready-exec` check becomes a first --exec that retries.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

image=${1:?usage: trace.sh IMAGE NAME OUTDIR} name=${2:?} out=${3:?}
imgslim=${IMGSLIM:-imgslim}
ready_timeout=${IMGSLIM_ACCEPT_READY_TIMEOUT:-90}
probes=$ACCEPT_DIR/images/$name.probes
[[ -f $probes ]] || die "no probes file $probes"
rm -rf "$out"; mkdir -p "$out"

# One argv as a string imgslim's --exec splits back into the same words (POSIX quoting).
quote() { local w s=""; for w in "$@"; do s+=" '${w//\'/\'\\\'\'}'"; done; printf '%s' "${s# }"; }

mapfile -t lines < <(grep -v '^[[:space:]]*\(#\|$\)' "$probes")
port="" server=() runs=0
for l in "${lines[@]}"; do
    eval "set -- $l"
    case $1 in exact: | tools:) continue ;; esac
    case $1 in
    port) port=$2 ;;
    ready-exec)
        shift
        server=(--exec "sh -c $(quote "i=0; until \"\$@\" >/dev/null 2>&1; do i=\$((i+1)); [ \$i -lt $((ready_timeout * 2)) ] || exit 1; sleep 0.5; done" ready "$@")" "${server[@]}") ;;
    http) server+=(--http "$port$4") ;;
    exec) shift 2; server+=(--exec "$(quote "$@")") ;;
    run)
        shift 2; runs=$((runs + 1))
        # As `run` in probe.sh: ARGS replace Entrypoint and Cmd.
        if (($#)); then set -- --entrypoint "$(printf '%s\n' "$@" | jq -Rnc '[inputs]')"; fi
        "$imgslim" trace "$image" -o "$out/run-$runs.json" --run-for "$ready_timeout" "$@" >&2 ;;
    esac
done
if [[ -n $port ]]; then
    "$imgslim" trace "$image" -o "$out/server.json" --ready-timeout "$ready_timeout" --run-for 1 "${server[@]}" >&2
fi
ls "$out"/*.json >/dev/null
log "$name: traced into $out"
