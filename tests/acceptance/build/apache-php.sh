#!/usr/bin/env bash
# apache-php: Debian 12's apache2 + mod_php 8.2 with pdo_sqlite and mbstring
# enabled in conf.d (Debian's phpenmod layout), a PHP page using them and a
# static page; started like the official php:apache image (apache2-foreground
# sources envvars, exec apache2 -DFOREGROUND); port 18088.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs

debian_base "$w"
apt_install "$r" apache2 libapache2-mod-php8.2 php8.2-sqlite3 php8.2-mbstring
oci_layer "$w" "apt-get install apache2 libapache2-mod-php8.2 php8.2-sqlite3 php8.2-mbstring"

install -m 755 "$ACCEPT_DIR/apps/apache-php/apache2-foreground" "$r/usr/local/bin/apache2-foreground"
install -m 644 "$ACCEPT_DIR/apps/apache-php/ports.conf" "$r/etc/apache2/ports.conf"
sed -i 's/<VirtualHost \*:80>/<VirtualHost *:18088>/' "$r/etc/apache2/sites-available/000-default.conf"
rm -f "$r/var/www/html/index.html"
cp "$ACCEPT_DIR/apps/apache-php/site/"* "$r/var/www/html/"
oci_layer "$w" "COPY site; Listen 18088"

oci_config "$w" --config.entrypoint apache2-foreground \
    --config.env "$DEB_PATH" --config.workingdir /var/www/html --config.exposedports 18088/tcp
oci_finish "$w" apache-php
