#!/usr/bin/env bash
# python-web: Debian python3 + stdlib HTTP server (json/sqlite3/hashlib/ssl),
# one pip package (pip cache left behind), non-root user, port 18081.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs

debian_base "$w"
apt_install "$r" python3 python3-pip ca-certificates
oci_layer "$w" "apt-get install python3 python3-pip ca-certificates"

chroot_mount "$r"
# Careless: --break-system-packages into /usr/local, cache left in /root/.cache/pip.
in_chroot "$r" python3 -m pip install --break-system-packages six==1.16.0
in_chroot "$r" useradd --system --uid 10001 --create-home --shell /usr/sbin/nologin app
chroot_umount "$r"
oci_layer "$w" "pip install six; useradd app"

mkdir -p "$r/app/static"
install -m 644 "$ACCEPT_DIR/apps/python-web/server.py" "$r/app/server.py"
install -m 644 "$ACCEPT_DIR/apps/python-web/hello.txt" "$r/app/static/hello.txt"
oci_layer "$w" "COPY app /app"

oci_config "$w" --config.entrypoint python3 --config.entrypoint /app/server.py \
    --config.env "$DEB_PATH" --config.env PORT=18081 --config.env PYTHONUNBUFFERED=1 \
    --config.user app --config.workingdir /app --config.exposedports 18081/tcp
oci_finish "$w" python-web
