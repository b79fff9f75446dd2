# shellcheck shell=bash
# Shared helpers for the acceptance image builders and probe runner.
# Sourced, never executed. Callers run with `set -euo pipefail`.

ACCEPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ACCEPT_CACHE=${IMGSLIM_ACCEPT_CACHE:-/var/cache/imgslim-accept}
DEBIAN_MIRROR=${IMGSLIM_ACCEPT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Fixed timestamp so history/config dates do not change between builds.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
export SOURCE_DATE_EPOCH

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# A missing tool is a failure under CI (never a silent skip); locally we exit
# 77 so the Rust harness can report "skipped" instead of a confusing failure.
need_tools() {
    local t missing=()
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
    ((${#missing[@]} == 0)) && return 0
    if [[ ${CI:-} == true ]]; then die "missing tools (CI=true, failing): ${missing[*]}"; fi
    log "missing tools: ${missing[*]} (skipping; set CI=true to make this fatal)"
    exit 77
}

sha_of_files() { cat "$@" | sha256sum | cut -c1-16; }

# ---- mounts: every mount we make is recorded and undone on exit, even on error.
_ACCEPT_MOUNTS=()
_ACCEPT_CLEANUPS=()
accept_on_exit() { _ACCEPT_CLEANUPS+=("$1"); }
_accept_exit() {
    local rc=$? i
    for ((i = ${#_ACCEPT_MOUNTS[@]} - 1; i >= 0; i--)); do
        mountpoint -q "${_ACCEPT_MOUNTS[i]}" 2>/dev/null && umount -l "${_ACCEPT_MOUNTS[i]}" || true
    done
    for ((i = ${#_ACCEPT_CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${_ACCEPT_CLEANUPS[i]}" || true; done
    return $rc
}
trap _accept_exit EXIT
trap 'exit 130' INT TERM

chroot_mount() { # ROOTFS
    local r=$1
    mkdir -p "$r/proc" "$r/dev" "$r/sys"
    mount -t proc proc "$r/proc" && _ACCEPT_MOUNTS+=("$r/proc")
    mount --rbind /dev "$r/dev" && mount --make-rslave "$r/dev" && _ACCEPT_MOUNTS+=("$r/dev")
    # Name resolution for apt/npm inside the chroot; restored by chroot_umount.
    if [[ -e $r/etc/resolv.conf || -L $r/etc/resolv.conf ]]; then mv "$r/etc/resolv.conf" "$r/etc/resolv.conf.accept-orig"; fi
    cp /etc/resolv.conf "$r/etc/resolv.conf"
    # The registries may sit behind a TLS-inspecting proxy whose CA only the
    # host trusts: hand the host bundle to pip/npm for the build, never ship it.
    cp /etc/ssl/certs/ca-certificates.crt "$r/tmp/.accept-host-ca.crt" 2>/dev/null || :
    # Packages must not start daemons (nginx) in the build chroot.
    printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"; chmod 755 "$r/usr/sbin/policy-rc.d"
}
chroot_umount() { # ROOTFS -- must run before every repack so /proc,/dev never leak into a layer
    local r=$1 i
    for ((i = ${#_ACCEPT_MOUNTS[@]} - 1; i >= 0; i--)); do
        case ${_ACCEPT_MOUNTS[i]} in "$r"/*)
            umount -R "${_ACCEPT_MOUNTS[i]}" 2>/dev/null || umount -l "${_ACCEPT_MOUNTS[i]}"
            unset '_ACCEPT_MOUNTS[i]' ;;
        esac
    done
    _ACCEPT_MOUNTS=("${_ACCEPT_MOUNTS[@]}")
    rm -f "$r/etc/resolv.conf" "$r/usr/sbin/policy-rc.d" "$r/tmp/.accept-host-ca.crt"
    if [[ -e $r/etc/resolv.conf.accept-orig || -L $r/etc/resolv.conf.accept-orig ]]; then mv "$r/etc/resolv.conf.accept-orig" "$r/etc/resolv.conf"; fi
}
in_chroot() { # ROOTFS CMD... (mounts must be active)
    local r=$1; shift
    chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
        PIP_CERT=/tmp/.accept-host-ca.crt NODE_EXTRA_CA_CERTS=/tmp/.accept-host-ca.crt PIP_DEFAULT_TIMEOUT=180 "$@"
}

# apt-get install inside the chroot, leaving what a careless Dockerfile leaves
# (lists + the .deb archives it fetched). A shared .deb pool outside the image
# makes rebuilds cheap; only the debs this install needs are seeded, so the
# image content never depends on what other images put in the pool.
apt_install() { # ROOTFS PKG...
    local r=$1; shift
    local pool=$ACCEPT_CACHE/apt-pool d f
    mkdir -p "$pool" "$r/var/cache/apt/archives/partial"
    chroot_mount "$r"
    in_chroot "$r" apt-get update -q >&2
    # --print-uris lists exactly the .debs this install will fetch: 'URL' FILE SIZE HASH
    in_chroot "$r" apt-get install -qq --print-uris --no-install-recommends "$@" | awk '{print $2}' |
        while read -r f; do
            [[ -f $pool/$f ]] && cp "$pool/$f" "$r/var/cache/apt/archives/$f"
            true
        done
    in_chroot "$r" apt-get install -y -q --no-install-recommends "$@" >&2
    chroot_umount "$r"
    # Harvest via temp name + rename so a parallel build never seeds a half-copied .deb.
    for d in "$r"/var/cache/apt/archives/*.deb; do
        [[ -e $d && ! -e $pool/${d##*/} ]] || continue
        cp "$d" "$pool/.${d##*/}.$$" && mv "$pool/.${d##*/}.$$" "$pool/${d##*/}"
    done
}

# ---- base Debian rootfs: debootstrap once, reuse for every Debian image.
# Keyed by the recipe only (not this file) so editing helpers does not redo it.
BASE_SUITE=bookworm
BASE_RECIPE="debootstrap --variant=minbase $BASE_SUITE $DEBIAN_MIRROR v1"
base_rootfs_tar() {
    local key tar lock
    key=$(printf '%s' "$BASE_RECIPE" | sha256sum | cut -c1-16)
    tar=$ACCEPT_CACHE/base-$BASE_SUITE-minbase-$key.tar
    mkdir -p "$ACCEPT_CACHE"
    lock=$ACCEPT_CACHE/base.lock
    (
        flock 9
        if [[ ! -s $tar ]]; then
            need_tools debootstrap
            local tmp
            tmp=$(mktemp -d "$ACCEPT_CACHE/.tmp-base-XXXXXX")
            trap 'rm -rf --one-file-system "$tmp"' EXIT
            mkdir -p "$ACCEPT_CACHE/debootstrap-debs"
            log "debootstrap minbase $BASE_SUITE (cold, a few minutes)"
            debootstrap --variant=minbase --cache-dir="$ACCEPT_CACHE/debootstrap-debs" \
                "$BASE_SUITE" "$tmp/rootfs" "$DEBIAN_MIRROR" >"$tmp/debootstrap.log" 2>&1 ||
                { tail -30 "$tmp/debootstrap.log" >&2; exit 1; }
            # debootstrap leaves its own apt archives out; keep the image honest & small-ish.
            tar --numeric-owner --xattrs --xattrs-include='*' -C "$tmp/rootfs" -cf "$tmp/base.tar" .
            mv "$tmp/base.tar" "$tar"
        fi
    ) 9>"$lock"
    echo "$tar"
}

# ---- OCI layout building with umoci.
# oci_start WORK: creates WORK/oci (tag latest) and an unpacked bundle WORK/bundle.
oci_start() {
    local w=$1
    umoci init --layout "$w/oci"
    umoci new --image "$w/oci:latest"
    umoci unpack --image "$w/oci:latest" "$w/bundle" >/dev/null
}
# oci_layer WORK "created_by text": append the bundle rootfs diff as a new layer.
oci_layer() {
    local w=$1 msg=$2
    umoci repack --refresh-bundle --history.created_by "$msg" \
        --history.created "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)" \
        --image "$w/oci:latest" "$w/bundle" >/dev/null
}
oci_config() { # WORK umoci-config-args...
    local w=$1; shift
    umoci config --image "$w/oci:latest" --created "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)" "$@"
}
# Finish: drop the bundle, gc, and also emit the docker-archive form.
oci_finish() { # WORK NAME
    local w=$1 name=$2
    rm -rf "$w/bundle"
    umoci gc --layout "$w/oci"
    skopeo copy -q "oci:$w/oci:latest" "docker-archive:$w/docker-archive.tar:imgslim-accept/$name:latest" >&2
}

# ---- sizes: "UNCOMPRESSED COMPRESSED LAYERS" for an OCI layout (first manifest).
# uncompressed = sum of layer tar sizes, compressed = sum of layer blob sizes.
# Decompressed sizes are memoised per blob digest (blobs are immutable).
image_sizes() { # LAYOUT_DIR
    local l=$1 m mt dg sz unc=0 comp=0 n=0 memo=$ACCEPT_CACHE/sizes u
    mkdir -p "$memo"
    m=$(jq -r '.manifests[0].digest' "$l/index.json")
    # An index may point at another index (multi-arch); follow to the first manifest.
    while jq -e '.manifests' "$l/blobs/${m/://}" >/dev/null 2>&1; do m=$(jq -r '.manifests[0].digest' "$l/blobs/${m/://}"); done
    while read -r mt dg sz; do
        n=$((n + 1)) comp=$((comp + sz))
        if [[ -s $memo/${dg#*:} ]]; then u=$(cat "$memo/${dg#*:}")
        else
            case $mt in
            *gzip) u=$(gzip -dc "$l/blobs/${dg/://}" | wc -c) ;;
            *zstd) u=$(zstd -dcq "$l/blobs/${dg/://}" | wc -c) ;;
            *) u=$sz ;;
            esac
            echo "$u" >"$memo/${dg#*:}"
        fi
        unc=$((unc + u))
    done < <(jq -r '.layers[] | "\(.mediaType) \(.digest) \(.size)"' "$l/blobs/${m/://}")
    echo "$unc $comp $n"
}

# Layer 1 of every Debian image: the shared debootstrap base. The one-layer
# base layout is built once (gzip of ~200 MB is the slow part) and each image
# starts from a copy whose blobs are hardlinked (blobs are immutable; umoci
# only adds new ones and rewrites index.json, which is copied).
base_layout() {
    local tar key dir tmp
    tar=$(base_rootfs_tar)
    key=$(printf '%s %s' "$BASE_RECIPE" "$(umoci --version)" | sha256sum | cut -c1-16)
    dir=$ACCEPT_CACHE/base-oci-$key
    (
        flock 9
        if [[ ! -f $dir/index.json ]]; then
            tmp=$(mktemp -d "$ACCEPT_CACHE/.tmp-base-oci-XXXXXX")
            trap 'rm -rf --one-file-system "$tmp"' EXIT
            oci_start "$tmp"
            tar --numeric-owner --xattrs --xattrs-include='*' -xf "$tar" -C "$tmp/bundle/rootfs"
            oci_layer "$tmp" "debootstrap --variant=minbase bookworm"
            umoci gc --layout "$tmp/oci"
            mv "$tmp/oci" "$dir"
        fi
    ) 9>"$ACCEPT_CACHE/base.lock"
    echo "$dir"
}
debian_base() { # WORK
    local b
    b=$(base_layout)
    mkdir -p "$1/oci"
    cp -a "$b/index.json" "$b/oci-layout" "$1/oci/"
    cp -al "$b/blobs" "$1/oci/blobs"
    umoci unpack --image "$1/oci:latest" "$1/bundle" >/dev/null
}
DEB_PATH=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
