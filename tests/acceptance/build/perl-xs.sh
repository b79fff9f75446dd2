#!/usr/bin/env bash
# perl-xs: Debian 12's perl with modules from Debian packages, two of them XS
# (JSON::XS, DBD::SQLite linking libsqlite3) and DBI; a CLI script as Cmd.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs

debian_base "$w"
apt_install "$r" perl libjson-xs-perl libdbd-sqlite3-perl libdbi-perl
oci_layer "$w" "apt-get install perl libjson-xs-perl libdbd-sqlite3-perl libdbi-perl"

install -D -m 755 "$ACCEPT_DIR/apps/perl-xs/report.pl" "$r/srv/app/report.pl"
oci_layer "$w" "COPY report.pl /srv/app/"

oci_config "$w" --config.cmd perl --config.cmd /srv/app/report.pl \
    --config.env "$DEB_PATH" --config.env LANG=C.UTF-8 --config.workingdir /srv/app
oci_finish "$w" perl-xs
