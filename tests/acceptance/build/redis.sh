#!/usr/bin/env bash
# redis: Debian 12's redis-server like the official image (WorkingDir /data
# owned by redis, an entrypoint that drops privileges and execs the Cmd), with
# its own config that includes Debian's; port 18087.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs

debian_base "$w"
apt_install "$r" redis-server
oci_layer "$w" "apt-get install redis-server"

install -m 755 "$ACCEPT_DIR/apps/redis/docker-entrypoint.sh" "$r/usr/local/bin/docker-entrypoint.sh"
mkdir -p "$r/usr/local/etc/redis"
install -m 644 "$ACCEPT_DIR/apps/redis/redis.conf" "$r/usr/local/etc/redis/redis.conf"
chroot "$r" sh -c 'mkdir -p /data && chown redis:redis /data'
oci_layer "$w" "COPY docker-entrypoint.sh redis.conf; mkdir /data"

oci_config "$w" --config.entrypoint docker-entrypoint.sh --config.cmd redis-server --config.cmd /usr/local/etc/redis/redis.conf \
    --config.env "$DEB_PATH" --config.volume /data --config.workingdir /data --config.exposedports 18087/tcp
oci_finish "$w" redis
