#!/usr/bin/env bash
# static-go-alpine: Alpine minirootfs layer + a static (CGO_ENABLED=0) Go
# HTTP server on port 18085, then a layer that deletes some Alpine files.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs
need_tools go
alpine=${IMGSLIM_ACCEPT_ALPINE:-$ACCEPT_DIR/../../../shared/images/alpine-minirootfs-3.20.3-x86_64.tar.gz}
[[ -f $alpine ]] || alpine=/work/shared/images/alpine-minirootfs-3.20.3-x86_64.tar.gz
[[ -f $alpine ]] || die "alpine minirootfs not found (set IMGSLIM_ACCEPT_ALPINE)"

# Stdlib only, so no module download; -trimpath/-buildid= for a reproducible binary.
mkdir -p "$ACCEPT_CACHE/gocache"
CGO_ENABLED=0 GOCACHE=$ACCEPT_CACHE/gocache GOPATH=$w/gopath GO111MODULE=off GOFLAGS= \
    go build -trimpath -ldflags '-s -w -buildid=' -o "$w/goapp" "$ACCEPT_DIR/apps/static-go/main.go"
rm -rf "$w/gopath"

oci_start "$w"
tar --numeric-owner -xzf "$alpine" -C "$r"
oci_layer "$w" "ADD alpine-minirootfs-3.20.3-x86_64.tar.gz /"

install -D -m 755 "$w/goapp" "$r/usr/local/bin/goapp"; rm -f "$w/goapp"
mkdir -p "$r/etc/goapp"; echo "zeta alpha mu static binary" >"$r/etc/goapp/config.txt"
echo "goapp:x:10003:10003::/nonexistent:/sbin/nologin" >>"$r/etc/passwd"
echo "goapp:x:10003:" >>"$r/etc/group"
oci_layer "$w" "COPY goapp; adduser goapp"

rm -rf "$r/etc/motd" "$r/etc/crontabs" "$r/etc/periodic"
oci_layer "$w" "rm motd crontabs periodic"

oci_config "$w" --config.entrypoint /usr/local/bin/goapp \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.env PORT=18085 \
    --config.user goapp --config.workingdir / --config.exposedports 18085/tcp
oci_finish "$w" static-go-alpine
