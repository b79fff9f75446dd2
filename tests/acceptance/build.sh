#!/usr/bin/env bash
# Build (or fetch from cache) the original image NAME and print its cache dir,
# which holds oci/ (OCI layout, tag "latest"), docker-archive.tar, build.log
# and build-seconds. Cache key: hash of build/NAME.sh + lib.sh and, when the
# image has one, of apps/NAME (every file's path and contents), so editing a
# recipe or the app it copies in rebuilds exactly that image.
#   usage: build.sh NAME            env: IMGSLIM_ACCEPT_CACHE (default /var/cache/imgslim-accept)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

name=${1:?usage: build.sh NAME}
script=$ACCEPT_DIR/build/$name.sh
[[ -f $script ]] || die "no build script $script"
need_tools umoci skopeo sha256sum flock tar
# Digest of a tree: each file's path (relative, so the checkout's location does
# not matter), executable bit (all git records: the rest follows the umask) and
# contents hash, in a fixed order.
app_digest() { # DIR
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sh -c 'for f; do if [ -x "$f" ]; then x=x; else x=-; fi; printf "%s %s " "$f" "$x"; sha256sum <"$f"; done' _) |
        sha256sum | cut -c1-16
}
key=$(sha_of_files "$script" "$ACCEPT_DIR/lib.sh")
if [[ -d $ACCEPT_DIR/apps/$name ]]; then
    key=$( { echo "$key"; app_digest "$ACCEPT_DIR/apps/$name"; } | sha256sum | cut -c1-16)
fi
out=$ACCEPT_CACHE/$name-$key
mkdir -p "$ACCEPT_CACHE/locks"

exec 8>"$ACCEPT_CACHE/locks/build-$name.lock"
flock 8 # two tests wanting the same image build it once
if [[ -f $out/oci/index.json && -f $out/docker-archive.tar ]]; then
    touch "$out" # mtime = last use, for pruning below
    log "$name: cached at $out"
    echo "$out"; exit 0
fi
# Leftovers of a build that was SIGKILLed (no trap ran): we hold this name's
# lock, so no live build owns them. Unmount /proc,/dev binds before rm -rf.
for old in "$ACCEPT_CACHE"/.tmp-"$name"-*; do
    [[ -d $old ]] || continue
    grep -o " $old/[^ ]*" /proc/self/mounts | sort -r | while read -r mnt; do umount -l "$mnt" || true; done
    # Never rm -rf across a still-mounted host /dev or /proc.
    grep -q " $old/" /proc/self/mounts && die "cannot unmount leftovers under $old"
    rm -rf --one-file-system "$old"
done
tmp=$(mktemp -d "$ACCEPT_CACHE/.tmp-$name-XXXXXX")
accept_on_exit "rm -rf --one-file-system '$tmp'"
log "$name: building (log: $tmp/build.log)"
start=$(date +%s)
if ! bash "$script" "$tmp" >"$tmp/build.log" 2>&1; then
    tail -40 "$tmp/build.log" >&2
    die "$name: build failed"
fi
echo $(($(date +%s) - start)) >"$tmp/build-seconds"
# Rename is atomic: a crash mid-build never leaves a half image under the key.
rm -rf "$out"; mv "$tmp" "$out"
# Other keys of this image may belong to another checkout sharing the cache
# (another branch/worktree, possibly probing it right now): prune only those
# unused for 3 days, never blindly.
find "$ACCEPT_CACHE" -maxdepth 1 -name "$name-*" ! -path "$out" -mtime +3 -exec rm -rf --one-file-system {} + 2>/dev/null || true
log "$name: built in $(cat "$out/build-seconds")s"
echo "$out"
