#!/usr/bin/env bash
# Reference squash with independent tools: umoci-unpack ORIG (applies every
# layer and whiteout), pack the merged rootfs as ONE layer into a fresh image
# and carry over the runtime config. This is what `imgslim squash` must be
# equivalent to; as a Processing it proves the exact: probes hold for a
# single-layer image.
#   usage: refsquash.sh ORIG_LAYOUT[:TAG] OUT_LAYOUT
set -euo pipefail
. "$(dirname "$0")/lib.sh"
orig=${1:?usage: refsquash.sh ORIG OUT} out=${2:?}
need_tools umoci jq
layout=${orig%%:*} tag=${orig#"$layout"}; tag=${tag#:}
[[ -n $tag ]] || tag=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"] // "latest"' "$layout/index.json")
w=$(mktemp -d "${TMPDIR:-/var/tmp}/imgslim-refsquash-XXXXXX")
accept_on_exit "rm -rf '$w'"

umoci unpack --image "$layout:$tag" "$w/orig" >/dev/null
umoci init --layout "$out"
umoci new --image "$out:latest"
umoci unpack --image "$out:latest" "$w/new" >/dev/null
rm -rf "$w/new/rootfs" && mv "$w/orig/rootfs" "$w/new/rootfs"
umoci repack --history.created_by "reference squash of $tag" --image "$out:latest" "$w/new" >/dev/null

# Runtime config: same fields the builders set, read from the original config blob.
m=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$layout/index.json")
c=$(jq -r .config.digest "$layout/blobs/${m/://}")
cfg=$(jq -c '.config // {}' "$layout/blobs/${c/://}")
args=()
while IFS= read -r v; do args+=(--config.entrypoint "$v"); done < <(jq -r '.Entrypoint // [] | .[]' <<<"$cfg")
while IFS= read -r v; do args+=(--config.cmd "$v"); done < <(jq -r '.Cmd // [] | .[]' <<<"$cfg")
while IFS= read -r v; do args+=(--config.env "$v"); done < <(jq -r '.Env // [] | .[]' <<<"$cfg")
while IFS= read -r v; do args+=(--config.exposedports "$v"); done < <(jq -r '.ExposedPorts // {} | keys[]' <<<"$cfg")
v=$(jq -r '.User // ""' <<<"$cfg"); [[ -z $v ]] || args+=(--config.user "$v")
v=$(jq -r '.WorkingDir // ""' <<<"$cfg"); [[ -z $v ]] || args+=(--config.workingdir "$v")
((${#args[@]} == 0)) || umoci config --image "$out:latest" "${args[@]}"
umoci gc --layout "$out"
