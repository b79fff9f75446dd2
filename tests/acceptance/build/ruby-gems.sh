#!/usr/bin/env bash
# ruby-gems: Debian 12's ruby 3.1 with gems from Debian packages (rack, webrick,
# sqlite3: a native extension linking libsqlite3), a Rack app started with
# `rackup` (a Ruby script: the interpreter comes from its #! line); port 18090.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs

debian_base "$w"
apt_install "$r" ruby ruby-rack ruby-webrick ruby-sqlite3
oci_layer "$w" "apt-get install ruby ruby-rack ruby-webrick ruby-sqlite3"

install -D -m 644 "$ACCEPT_DIR/apps/ruby-gems/config.ru" "$r/srv/app/config.ru"
oci_layer "$w" "COPY config.ru /srv/app/"

oci_config "$w" --config.cmd rackup --config.cmd -s --config.cmd webrick --config.cmd -E --config.cmd deployment \
    --config.cmd -o --config.cmd 127.0.0.1 --config.cmd -p --config.cmd 18090 --config.cmd config.ru \
    --config.env "$DEB_PATH" --config.env LANG=C.UTF-8 --config.workingdir /srv/app --config.exposedports 18090/tcp
oci_finish "$w" ruby-gems
