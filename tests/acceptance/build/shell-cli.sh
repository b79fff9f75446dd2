#!/usr/bin/env bash
# shell-cli: a /bin/sh entrypoint using coreutils/sed/awk/gzip on an input
# file shipped in the image; deterministic output, no network.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs

debian_base "$w"
# gawk replaces mawk as awk via alternatives; bsdextrautils brings rev.
apt_install "$r" gawk bsdextrautils
oci_layer "$w" "apt-get install gawk bsdextrautils"

install -D -m 755 "$ACCEPT_DIR/apps/shell-cli/cli.sh" "$r/usr/local/bin/cli"
install -D -m 644 "$ACCEPT_DIR/apps/shell-cli/input.txt" "$r/usr/share/cli/input.txt"
oci_layer "$w" "COPY cli /usr/local/bin/cli"

oci_config "$w" --config.entrypoint /usr/local/bin/cli --config.cmd /usr/share/cli/input.txt \
    --config.env "$DEB_PATH" --config.env LANG=C.UTF-8 --config.workingdir /tmp --config.user nobody
oci_finish "$w" shell-cli
