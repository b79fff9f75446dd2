#!/usr/bin/env bash
# postgres: Debian 12's postgresql-15 set up like the official image (no
# cluster from the package, PATH with the server's bin dir, an entrypoint that
# runs "$PGBIN/initdb" then `exec setpriv --reuid=postgres … "$@"`), port 18086 (PGPORT).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs

debian_base "$w"
# As the official Dockerfile: the package must not create a cluster of its own.
mkdir -p "$r/etc/postgresql-common/createcluster.d"
echo 'create_main_cluster = false' >"$r/etc/postgresql-common/createcluster.d/postgres.conf"
apt_install "$r" postgresql-15
oci_layer "$w" "apt-get install postgresql-15"

install -m 755 "$ACCEPT_DIR/apps/postgres/docker-entrypoint.sh" "$r/usr/local/bin/docker-entrypoint.sh"
# Inside the chroot: /var/run is an absolute symlink to /run.
chroot "$r" sh -c 'mkdir -p /var/lib/postgresql/data /var/run/postgresql &&
    chown postgres:postgres /var/lib/postgresql/data /var/run/postgresql && chmod 3777 /var/run/postgresql'
oci_layer "$w" "COPY docker-entrypoint.sh; mkdir PGDATA"

oci_config "$w" --config.entrypoint docker-entrypoint.sh --config.cmd postgres \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/15/bin \
    --config.env PG_MAJOR=15 --config.env PGDATA=/var/lib/postgresql/data --config.env PGPORT=18086 \
    --config.env LANG=C.UTF-8 --config.volume /var/lib/postgresql/data \
    --config.workingdir / --config.exposedports 18086/tcp
oci_finish "$w" postgres
