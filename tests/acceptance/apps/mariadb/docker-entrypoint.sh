#!/bin/bash
# Entrypoint in the shape of the official mariadb image: the settings come from
# the server's own `--verbose --help`, a first start runs mariadb-install-db,
# starts a temporary server on its socket, loads the time zones with
# mariadb-tzinfo-to-sql, then the script re-executes itself through gosu and
# ends in `exec "$@"`.
set -eo pipefail

mysql_note() { printf '[Entrypoint]: %s\n' "$*"; }

# A setting as the server will see it (my.cnf and the command line).
mysql_get_config() {
	local conf="$1"; shift
	"$@" --verbose --help 2>/dev/null |
		awk -v conf="$conf" '$1 == conf && /^[^ \t]/ { sub(/^[^ \t]+[ \t]+/, ""); print; exit }'
}

docker_setup_env() {
	declare -g DATADIR SOCKET
	DATADIR="$(mysql_get_config 'datadir' "$@")"
	SOCKET="$(mysql_get_config 'socket' "$@")"
	declare -g DATABASE_ALREADY_EXISTS
	if [ -d "$DATADIR/mysql" ]; then
		DATABASE_ALREADY_EXISTS='true'
	fi
}

docker_create_db_directories() {
	mkdir -p "$DATADIR" "$(dirname "$SOCKET")"
	if [ "$(id -u)" = "0" ]; then
		chown -R mysql:mysql "$DATADIR" "$(dirname "$SOCKET")"
	fi
}

docker_process_sql() {
	mariadb --protocol=socket -uroot -hlocalhost --socket="$SOCKET" "$@"
}

docker_init_database_dir() {
	mysql_note "Initializing database files"
	mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal \
		--skip-test-db --skip-log-bin --expire-logs-days=0 >/dev/null
}

docker_temp_server_start() {
	"$@" --skip-networking --default-time-zone=SYSTEM --socket="$SOCKET" --wsrep_on=OFF &
	local i
	for i in $(seq 60); do
		if mariadb-admin --socket="$SOCKET" -uroot ping >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	mysql_note "temporary server did not start"
	exit 1
}

docker_temp_server_stop() {
	mariadb-admin --socket="$SOCKET" -uroot shutdown
}

docker_setup_db() {
	mysql_note "Loading time zones"
	mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null | docker_process_sql --database=mysql
	docker_process_sql <<-EOSQL
		CREATE DATABASE IF NOT EXISTS app;
	EOSQL
}

_main() {
	if [ "${1:0:1}" = '-' ]; then
		set -- mariadbd "$@"
	fi
	if [ "$1" = 'mariadbd' ] || [ "$1" = 'mysqld' ]; then
		docker_setup_env "$@"
		docker_create_db_directories
		if [ "$(id -u)" = "0" ]; then
			mysql_note "Switching to dedicated user 'mysql'"
			exec gosu mysql "${BASH_SOURCE[0]}" "$@"
		fi
		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			docker_init_database_dir "$@"
			docker_temp_server_start "$@"
			docker_setup_db
			docker_temp_server_stop
			mysql_note "init process done"
		fi
	fi
	exec "$@"
}

_main "$@"
