#!/usr/bin/env bash
# nginx-static: Debian's nginx package serving a static site on port 18082;
# master as root, workers as www-data (needs CAP_CHOWN/SETUID in the runtime).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs

debian_base "$w"
apt_install "$r" nginx
oci_layer "$w" "apt-get install nginx"

mkdir -p "$r/var/www/site"
cp -r "$ACCEPT_DIR/apps/nginx-static/site/." "$r/var/www/site/"
install -m 644 "$ACCEPT_DIR/apps/nginx-static/site.conf" "$r/etc/nginx/sites-available/site"
ln -sfn ../sites-available/site "$r/etc/nginx/sites-enabled/site"
oci_layer "$w" "COPY site /var/www/site"

# Like many Dockerfiles: drop the distro default site in a later layer (whiteouts).
rm -rf "$r/var/www/html" "$r/etc/nginx/sites-enabled/default"
oci_layer "$w" "rm default site"

oci_config "$w" --config.entrypoint nginx --config.cmd -g --config.cmd "daemon off;" \
    --config.env "$DEB_PATH" --config.workingdir / --config.exposedports 18082/tcp
oci_finish "$w" nginx-static
