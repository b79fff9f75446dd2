#!/usr/bin/env bash
# node-app: Debian's nodejs; npm itself from the npm registry into
# /usr/local (as the official node images ship it; Debian's npm package drags
# in ~400 node-* packages and takes ~9 min to install here); `npm install`
# pulls dependencies AND devDependencies (typescript), npm cache left behind.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs
need_tools npm

debian_base "$w"
apt_install "$r" nodejs ca-certificates
oci_layer "$w" "apt-get install nodejs"

# npm's published tarball bundles all its dependencies; the host npm only downloads it.
(cd "$w" && npm pack --silent npm@9.9.4 >/dev/null)
mkdir -p "$r/usr/local/lib/node_modules/npm" "$r/usr/local/bin"
tar -xzf "$w/npm-9.9.4.tgz" --strip-components=1 --no-same-owner -C "$r/usr/local/lib/node_modules/npm"
rm -f "$w/npm-9.9.4.tgz"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
oci_layer "$w" "install npm 9.9.4 to /usr/local"

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
