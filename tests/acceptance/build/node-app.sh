#!/usr/bin/env bash
# node-app: Debian's nodejs + npm; `npm install` pulls dependencies AND
# devDependencies (typescript) from the npm registry, npm cache left behind.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs

debian_base "$w"
apt_install "$r" nodejs npm ca-certificates
oci_layer "$w" "apt-get install nodejs npm"

install -D -m 644 "$ACCEPT_DIR/apps/node-app/package.json" "$r/srv/app/package.json"
chroot_mount "$r"
# Careless: plain `npm install` (devDependencies too), cache in /root/.npm.
in_chroot "$r" sh -c 'cd /srv/app && npm install --no-audit --no-fund --loglevel=error'
in_chroot "$r" useradd --system --uid 10002 --no-create-home --shell /usr/sbin/nologin node
chroot_umount "$r"
oci_layer "$w" "npm install"

install -m 644 "$ACCEPT_DIR/apps/node-app/server.js" "$r/srv/app/server.js"
oci_layer "$w" "COPY server.js"

oci_config "$w" --config.entrypoint node --config.cmd server.js \
    --config.env "$DEB_PATH" --config.env PORT=18083 --config.env NODE_ENV=production \
    --config.user node --config.workingdir /srv/app --config.exposedports 18083/tcp
oci_finish "$w" node-app
