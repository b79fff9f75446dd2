#!/usr/bin/env bash
# mariadb: Debian 12's mariadb-server (10.11) with tzdata and gosu, set up like
# the official image (no database from the package, an entrypoint that
# initialises the data dir, loads the time zones and re-executes itself
# through gosu before `exec "$@"`), loopback port 18089.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs

debian_base "$w"
apt_install "$r" mariadb-server tzdata gosu
# As the official Dockerfile: the package's own database goes; the entrypoint makes one.
rm -rf "$r/var/lib/mysql" && mkdir -p "$r/var/lib/mysql" "$r/run/mysqld"
chroot "$r" chown mysql:mysql /var/lib/mysql /run/mysqld
oci_layer "$w" "apt-get install mariadb-server tzdata gosu"

install -m 755 "$ACCEPT_DIR/apps/mariadb/docker-entrypoint.sh" "$r/usr/local/bin/docker-entrypoint.sh"
install -m 644 "$ACCEPT_DIR/apps/mariadb/99-accept.cnf" "$r/etc/mysql/mariadb.conf.d/99-accept.cnf"
oci_layer "$w" "COPY docker-entrypoint.sh 99-accept.cnf"

oci_config "$w" --config.entrypoint docker-entrypoint.sh --config.cmd mariadbd \
    --config.env "$DEB_PATH" --config.volume /var/lib/mysql --config.workingdir / --config.exposedports 18089/tcp
oci_finish "$w" mariadb
