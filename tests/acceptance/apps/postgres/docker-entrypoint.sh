#!/bin/sh
# Entrypoint in the style of the official postgres image: a variable names the
# server's bin dir, setup runs "$PGBIN/initdb" as the postgres user, then the
# Cmd is exec'ed through gosu.
set -e
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
: "${PGDATA:=/var/lib/postgresql/data}"

docker_create_db_directories() {
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
}

docker_init_database_dir() {
	setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/initdb" -D "$PGDATA" --username=postgres --auth=trust \
		--encoding=UTF8 --locale=C.UTF-8 >/dev/null
}

if [ "$1" = postgres ]; then
	if [ "$(id -u)" = 0 ]; then
		docker_create_db_directories
	fi
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		docker_init_database_dir
	fi
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
fi
exec "$@"
