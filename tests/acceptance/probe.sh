#!/usr/bin/env bash
# Run an image's probes under runc and record the answers, one file per probe.
#   usage: probe.sh IMAGE PROBES_FILE OUTDIR
#   IMAGE: OCI layout dir (optionally DIR:TAG) or a docker-archive .tar
#   env:   IMGSLIM_ACCEPT_EXACT=1  also run probes marked "exact:" (squash/identity)
#          IMGSLIM_ACCEPT_READY_TIMEOUT (s, default 90), IMGSLIM_ACCEPT_RUN_TIMEOUT (s, default 120)
# Probe file lines (shell-quoted words, '#' comments):
#   port N                 image is a server: start its entrypoint detached, share host net
#   ready PATH             readiness URL path (default /)
#   ready-exec ARGS...     readiness = ARGS exit 0 inside the server (non-HTTP servers: psql, redis-cli)
#   http NAME METHOD PATH  record "status=.. content-type=.." + body
#   exec NAME ARGS...      run ARGS inside the running server container (stdout + exit code)
#   run NAME [ARGS...]     run a fresh container, ARGS replace Entrypoint+Cmd (none = image default)
#   exact: <probe>         only with IMGSLIM_ACCEPT_EXACT=1 (file-level fingerprints a slim may change)
#   tools: <probe>         not with IMGSLIM_ACCEPT_MINIMAL=1 (runs tools the app does not use)
# OUTDIR/NAME.out is compared byte for byte; NAME.err and server.log are for humans.
# Exit status: 0 when every probe produced an answer (http response / exit 0), else 1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

image=${1:?usage: probe.sh IMAGE PROBES OUTDIR} probes=${2:?} out=${3:?}
need_tools umoci skopeo runc jq curl timeout
ready_timeout=${IMGSLIM_ACCEPT_READY_TIMEOUT:-90}
run_timeout=${IMGSLIM_ACCEPT_RUN_TIMEOUT:-120}
RUNC_ROOT=/run/imgslim-accept-runc # private state dir: never touch other users' containers
runc_() { runc --root "$RUNC_ROOT" "$@"; }

mkdir -p "$out" "$ACCEPT_CACHE/locks"
work=$(mktemp -d "${TMPDIR:-/var/tmp}/imgslim-probe-XXXXXX")
accept_on_exit "rm -rf '$work'"

# --- get an OCI layout + tag umoci can read.
if [[ -f $image ]]; then
    skopeo copy -q "docker-archive:$image" "oci:$work/oci:latest" >&2
    layout=$work/oci tag=latest
else
    layout=${image%%:*} tag=${image#"$layout"}; tag=${tag#:}
    if [[ -z $tag ]]; then
        tag=$(jq -r '.manifests | if length == 1 then .[0].annotations["org.opencontainers.image.ref.name"] // "" else "" end' "$layout/index.json")
        if [[ -z $tag ]]; then # untagged output: let skopeo pick the single image
            skopeo copy -q "oci:$layout" "oci:$work/oci:latest" >&2
            layout=$work/oci tag=latest
        fi
    fi
fi
umoci unpack --image "$layout:$tag" "$work/bundle" >/dev/null

# --- make the bundle runnable on this machine (see README): host net so probes
# reach 127.0.0.1, no cgroup ns/limits, Docker's default capabilities.
caps='["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"]'
jq --argjson caps "$caps" '
  del(.process.rlimits) | .process.terminal = false
  | .process.capabilities = {bounding: $caps, effective: $caps, permitted: $caps}
  | .linux.namespaces |= map(select(.type != "network" and .type != "cgroup"))
  | del(.linux.resources)
  | .mounts |= map(select(.destination != "/sys/fs/cgroup"))
  ' "$work/bundle/config.json" >"$work/config.base.json"
cp "$work/config.base.json" "$work/bundle/config.json"

ids=()
cleanup_containers() {
    local id
    for id in "${ids[@]}"; do
        runc_ kill "$id" KILL 2>/dev/null || true
        runc_ delete -f "$id" 2>/dev/null || true
    done
}
accept_on_exit cleanup_containers
# Sweep containers left by a probe.sh that was SIGKILLed (trap never ran):
# ids carry the owning pid, so only dead owners' containers are removed.
for stale in $(runc_ list -q 2>/dev/null); do
    owner=${stale#imgslim-accept-}; owner=${owner%%-*}
    [[ $owner =~ ^[0-9]+$ ]] && ! kill -0 "$owner" 2>/dev/null || continue
    runc_ kill "$stale" KILL 2>/dev/null || true; runc_ delete -f "$stale" 2>/dev/null || true
done
# Sets $id (not echoed: a $(...) subshell would lose the ids+= and leak the container).
new_id() { id="imgslim-accept-$$-${#ids[@]}-$RANDOM"; ids+=("$id"); }

# Probe lines are trusted repo content; eval gives them shell quoting.
mapfile -t lines < <(grep -v '^[[:space:]]*\(#\|$\)' "$probes")
port="" ready=/ ready_cmd=() failed=0 server="" total=0
for l in "${lines[@]}"; do
    eval "set -- $l"
    case $1 in port) port=$2 ;; ready) ready=$2 ;; ready-exec) shift; ready_cmd=("$@") ;; esac
done
is_ready() {
    if ((${#ready_cmd[@]})); then runc_ exec "$server" "${ready_cmd[@]}" </dev/null >/dev/null 2>&1
    else curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port$ready"; fi
}

start_server() {
    new_id; server=$id
    # Same image probed twice at once (two variants) would collide on the port.
    exec 7>"$ACCEPT_CACHE/locks/port-$port.lock"; flock 7
    # Any listener (HTTP or not) on the port is someone else's.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port already in use before starting the container"
    fi
    runc_ run -d --bundle "$work/bundle" "$server" </dev/null >"$out/server.log" 2>&1
    local deadline=$((SECONDS + ready_timeout))
    until is_ready; do
        if [[ $(runc_ state "$server" 2>/dev/null | jq -r .status) != running ]]; then
            log "server exited before ready; log:"; tail -20 "$out/server.log" >&2; return 1
        fi
        ((SECONDS < deadline)) || { log "not ready after ${ready_timeout}s"; tail -20 "$out/server.log" >&2; return 1; }
        sleep 0.5
    done
}

record_cmd() { # NAME CMD... : stdout + exit code into NAME.out
    local name=$1 rc=0; shift
    timeout -k 5 "$run_timeout" "$@" </dev/null >"$out/$name.out" 2>"$out/$name.err" || rc=$?
    echo "exit=$rc" >>"$out/$name.out"
    ((rc == 0)) || { log "probe $name: exit $rc"; sed 's/^/  stderr: /' "$out/$name.err" | tail -5 >&2; failed=$((failed + 1)); }
}

if [[ -n $port ]]; then start_server || { echo "server did not start" >"$out/_server.out"; failed=1; }; fi
for l in "${lines[@]}"; do
    eval "set -- $l"
    if [[ $1 == exact: ]]; then
        shift; [[ ${IMGSLIM_ACCEPT_EXACT:-0} == 1 ]] || continue
    fi
    # "tools:" probes run programs the app itself does not use (sh, id, wc): a minimal image
    # drops them by design, so they are asked of every variant but minimal.
    if [[ $1 == tools: ]]; then
        shift
        if [[ ${IMGSLIM_ACCEPT_MINIMAL:-0} == 1 ]]; then log "probe $2: skipped for a minimal image (uses tools outside the app)"; continue; fi
    fi
    kind=$1; shift
    case $kind in
    port | ready | ready-exec) continue ;;
    http)
        name=$1 method=$2 path=$3 total=$((total + 1))
        code=$(curl -sS --max-time 20 -X "$method" -o "$out/$name.body" -w '%{http_code} %{content_type}' \
            "http://127.0.0.1:$port$path" 2>"$out/$name.err") || code="curl-failed"
        { echo "status=${code%% *} content-type=${code#* }"; cat "$out/$name.body" 2>/dev/null; } >"$out/$name.out"
        rm -f "$out/$name.body"
        [[ $code == [1-5]* ]] || { log "probe $name: $code"; failed=$((failed + 1)); }
        ;;
    exec)
        name=$1; shift; total=$((total + 1))
        record_cmd "$name" runc --root "$RUNC_ROOT" exec "$server" "$@"
        ;;
    run)
        name=$1; shift; total=$((total + 1))
        if (($#)); then
            # --arg values are never parsed as jq options (args like "-c").
            args='[]'; for a in "$@"; do args=$(jq -c --arg a "$a" '. + [$a]' <<<"$args"); done
            jq --argjson a "$args" '.process.args = $a' "$work/config.base.json" >"$work/bundle/config.json"
        else cp "$work/config.base.json" "$work/bundle/config.json"; fi
        new_id
        record_cmd "$name" runc --root "$RUNC_ROOT" run --bundle "$work/bundle" "$id"
        runc_ delete -f "$id" 2>/dev/null || true
        ;;
    *) die "unknown probe kind '$kind' in $probes" ;;
    esac
done
cleanup_containers; ids=()
echo "$total" >"$out/_total"
log "probed $image: $total probes, $failed without an answer"
((failed == 0))
