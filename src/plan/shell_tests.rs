//! Scripts in the shapes of the official images' entrypoints (postgres, redis, php/apache,
//! mariadb), written here from their structure.
use super::*;

fn walk(text: &str, env: &[(&str, &str)], files: &[(&str, &str)]) -> Vec<At> {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let files: Vec<(String, String)> = files.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let read = move |p: &str| files.iter().find(|(k, _)| k == p).cloned();
    run_script(text, Some("/usr/local/bin/docker-entrypoint.sh"), "entry", &env, &read).expect("parses")
}

fn runs(ev: &[At]) -> Vec<String> {
    let mut v: Vec<String> = ev.iter().filter_map(|a| if let Event::Run(s) = &a.event { Some(s.clone()) } else { None }).collect();
    v.sort();
    v.dedup();
    v
}

fn has(ev: &[At], e: &Event) -> bool {
    ev.iter().any(|a| &a.event == e)
}

fn dynamic(ev: &[At]) -> Vec<String> {
    ev.iter().filter_map(|a| if let Event::Dynamic(s) = &a.event { Some(s.clone()) } else { None }).collect()
}

const POSTGRES: &str = r#"#!/usr/bin/env bash
set -Eeo pipefail
file_env() {
	local var="$1"
	local fileVar="${var}_FILE"
	local def="${2:-}"
	local val="$def"
	if [ "${!var:-}" ]; then
		val="${!var}"
	elif [ "${!fileVar:-}" ]; then
		val="$(< "${!fileVar}")"
	fi
	export "$var"="$val"
	unset "$fileVar"
}
_is_sourced() {
	[ "${#FUNCNAME[@]}" -ge 2 ] \
		&& [ "${FUNCNAME[0]}" = '_is_sourced' ] \
		&& [ "${FUNCNAME[1]}" = 'source' ]
}
docker_create_db_directories() {
	local user; user="$(id -u)"
	mkdir -p "$PGDATA"
	chmod 00700 "$PGDATA" || :
	mkdir -p /var/run/postgresql || :
	if [ "$user" = '0' ]; then
		find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
	fi
}
docker_init_database_dir() {
	local uid; uid="$(id -u)"
	eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "$@"'
}
docker_temp_server_start() {
	set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
	PGUSER="${PGUSER:-$POSTGRES_USER}" \
	pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}
docker_setup_env() {
	file_env 'POSTGRES_PASSWORD'
	: "${POSTGRES_USER:=postgres}"
	: "${POSTGRES_DB:=$POSTGRES_USER}"
	export POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DB
}
_main() {
	if [ "${1:0:1}" = '-' ]; then
		set -- postgres "$@"
	fi
	if [ "$1" = 'postgres' ]; then
		docker_setup_env
		docker_create_db_directories
		if [ "$(id -u)" = '0' ]; then
			exec gosu postgres "$BASH_SOURCE" "$@"
		fi
		docker_init_database_dir
		docker_temp_server_start "$@"
		"$PGBIN/initdb" --version
	fi
	exec "$@"
}
if ! _is_sourced; then
	_main "$@"
fi
"#;

#[test]
fn postgres_shape_functions_gosu_find_exec_and_cmd() {
    let ev = walk(POSTGRES, &[("PGDATA", "/var/lib/postgresql/data"), ("PATH", "/usr/lib/postgresql/17/bin:/usr/bin"), ("PGBIN", "/usr/lib/postgresql/17/bin")], &[]);
    let r = runs(&ev);
    for want in ["gosu", "/usr/local/bin/docker-entrypoint.sh", "id", "mkdir", "chmod", "find", "chown", "initdb", "printf", "pg_ctl", "/usr/lib/postgresql/17/bin/initdb"] {
        assert!(r.contains(&want.to_string()), "{want} not in {r:?}");
    }
    // `_main "$@"` → `exec "$@"`: the Cmd runs. Functions are not commands.
    assert!(has(&ev, &Event::RunCmd));
    assert!(!r.iter().any(|c| c == "_main" || c == "file_env" || c == "docker_setup_env"), "{r:?}");
    // Env makes "$PGDATA" a path argument.
    assert!(has(&ev, &Event::PathArg("/var/lib/postgresql/data".into())));
    assert!(dynamic(&ev).is_empty(), "{:?}", dynamic(&ev));
    // The eval's command is a literal: resolved, not a risk.
    assert!(!r.contains(&"eval".to_string()), "{r:?}");
}

#[test]
fn line_numbers_follow_the_script() {
    let ev = walk(POSTGRES, &[], &[]);
    let gosu = ev.iter().find(|a| a.event == Event::Run("gosu".into())).unwrap();
    assert_eq!(gosu.line, POSTGRES.lines().position(|l| l.contains("exec gosu")).unwrap() + 1);
    let d = ev.iter().find(|a| matches!(&a.event, Event::Dynamic(s) if s.contains("PGBIN"))).expect("PGBIN unknown without Env");
    assert_eq!(d.line, POSTGRES.lines().position(|l| l.contains("$PGBIN/initdb")).unwrap() + 1);
}

const REDIS: &str = r#"#!/bin/sh
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi
if [ "$1" = 'redis-server' -a "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec setpriv --reuid=redis --regid=redis --clear-groups -- "$0" "$@"
fi
um="$(umask)"
if [ "$um" = '0022' ]; then
	umask 0077
fi
exec su-exec redis:redis nice -n 5 timeout -s TERM 3600 "$@"
"#;

#[test]
fn redis_shape_setpriv_reexec_and_wrapped_cmd() {
    let ev = walk(REDIS, &[], &[]);
    let r = runs(&ev);
    for want in ["setpriv", "/usr/local/bin/docker-entrypoint.sh", "find", "chown", "su-exec", "nice", "timeout", "id"] {
        assert!(r.contains(&want.to_string()), "{want} not in {r:?}");
    }
    assert!(!r.iter().any(|c| c == "redis" || c == "redis:redis" || c == "5" || c == "3600" || c == "TERM"), "{r:?}");
    assert!(has(&ev, &Event::RunCmd));
    assert!(dynamic(&ev).is_empty(), "{:?}", dynamic(&ev));
}

const APACHE: &str = r#"#!/bin/bash
set -e
: "${APACHE_CONFDIR:=/etc/apache2}"
: "${APACHE_ENVVARS:=$APACHE_CONFDIR/envvars}"
if test -f "$APACHE_ENVVARS"; then
	. "$APACHE_ENVVARS"
fi
: "${APACHE_RUN_DIR:=/var/run/apache2}"
: "${APACHE_PID_FILE:=$APACHE_RUN_DIR/apache2.pid}"
rm -f "$APACHE_PID_FILE"
"$APACHE_SBIN/apache2ctl" -t
exec apache2 -DFOREGROUND "$@"
"#;

const ENVVARS: &str = "export APACHE_SBIN=/usr/sbin\nexport APACHE_LOG_DIR=/var/log/apache2$SUFFIX\nAPACHE_LOCK_DIR=/var/lock/apache2\nmkdir -p $APACHE_LOCK_DIR\n";

#[test]
fn php_apache_shape_defaults_and_source_carry_variables() {
    let ev = walk(APACHE, &[], &[("/etc/apache2/envvars", ENVVARS)]);
    assert!(has(&ev, &Event::Source("/etc/apache2/envvars".into())), "{ev:?}");
    let r = runs(&ev);
    // APACHE_SBIN comes from the sourced file; `:=` defaults compose.
    assert!(r.contains(&"/usr/sbin/apache2ctl".to_string()), "{r:?}");
    assert!(r.contains(&"apache2".to_string()) && r.contains(&"rm".to_string()) && r.contains(&"mkdir".to_string()));
    assert!(has(&ev, &Event::PathArg("/var/run/apache2/apache2.pid".into())));
    assert!(has(&ev, &Event::PathArg("/var/lock/apache2".into())));
    let mk = ev.iter().find(|a| a.event == Event::Run("mkdir".into())).unwrap();
    assert!(mk.label.starts_with("/etc/apache2/envvars (sourced from entry"), "{mk:?}");
    assert_eq!(mk.line, 4);
    assert!(dynamic(&ev).is_empty(), "{:?}", dynamic(&ev));
    // Not in the image: said, and the rest still walked.
    let ev = walk(APACHE, &[], &[]);
    assert!(has(&ev, &Event::SourceMissing("/etc/apache2/envvars".into())));
    assert_eq!(dynamic(&ev), ["\"$APACHE_SBIN/apache2ctl\""]);
}

const PHP: &str = "#!/bin/sh\nset -e\nif [ \"${1#-}\" != \"$1\" ]; then\n\tset -- php \"$@\"\nfi\nexec \"$@\"\n";

#[test]
fn php_shape_runs_the_cmd() {
    let ev = walk(PHP, &[], &[]);
    assert!(has(&ev, &Event::RunCmd));
    assert_eq!(runs(&ev), ["[", "set"]);
}

const MARIADB: &str = r#"#!/bin/bash
set -eo pipefail
shopt -s nullglob
mysql_log() {
	local type="$1"; shift
	printf '%s [%s] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$type" "$*"
}
mysql_note() {
	mysql_log Note "$@"
}
mysql_check_config() {
	local toRun=( "$@" --verbose --help --log-bin-index="$(mktemp -u)" ) errors
	if ! errors="$("${toRun[@]}" 2>&1 >/dev/null)"; then
		mysql_error "mariadbd failed while attempting to check config"
	fi
}
docker_temp_server_start() {
	"$@" --skip-networking --default-time-zone=SYSTEM --socket="${SOCKET}" --wsrep_on=OFF &
	declare -g MARIADB_PID
	MARIADB_PID=$!
}
docker_process_sql() {
	mariadb --defaults-extra-file=<( _mariadb_passfile ) "$@"
}
docker_setup_db() {
	local tz="${MARIADB_TZDIR:-/usr/share/zoneinfo}"
	mariadb-tzinfo-to-sql --skip-write-binlog "$tz" | docker_process_sql --database=mysql
}
docker_mariadb_init() {
	docker_temp_server_start "$@"
	docker_setup_db
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh) . "$f" ;;
			*.sql.zst) zstd -dc "$f" | docker_process_sql ;;
		esac
	done
}
_main() {
	if [ "${1:0:1}" = '-' ]; then
		set -- mariadbd "$@"
	fi
	if [ "$1" = 'mariadbd' ] || [ "$1" = 'mysqld' ]; then
		mysql_note "Entrypoint script for MariaDB Server ${MARIADB_VERSION} started."
		mysql_check_config "$@"
		if [ "$(id -u)" = "0" ]; then
			exec gosu mysql "${BASH_SOURCE[0]}" "$@"
		fi
		docker_mariadb_init "$@"
	fi
	exec "$@"
}
if ! _is_sourced; then
	_main "$@"
fi
"#;

#[test]
fn mariadb_shape_functions_pass_the_cmd_on() {
    let ev = walk(MARIADB, &[], &[]);
    let r = runs(&ev);
    for want in ["printf", "date", "mktemp", "mariadb", "mariadb-tzinfo-to-sql", "zstd", "gosu", "/usr/local/bin/docker-entrypoint.sh", "shopt"] {
        assert!(r.contains(&want.to_string()), "{want} not in {r:?}");
    }
    assert!(has(&ev, &Event::RunCmd));
    assert!(has(&ev, &Event::PathArg("/usr/share/zoneinfo".into())));
    // `. "$f"` of a loop variable cannot be known.
    assert!(has(&ev, &Event::SourceMissing("\"$f\"".into())));
    // `"${toRun[@]}"` is an array: run time, said.
    assert_eq!(dynamic(&ev).iter().filter(|d| d.contains("toRun")).count(), 1, "{:?}", dynamic(&ev));
}

#[test]
fn wrappers_with_options_and_the_commands_they_run() {
    let s = "exec gosu postgres initdb -D x\nexec su-exec 999:999 redis-server\nsetpriv --reuid=1 --init-groups nginx -g x\nrunuser -u www -- php-fpm\nexec tini -s -- node app.js\nchroot /srv/root busybox sh\nenv -i PATH=/bin timeout -k 5 10 nice -n 5 mysqld\ndumb-init -r 15:2 -- memcached\nrunuser -l app -c 'exec uwsgi --ini /etc/u.ini'\nbash -c \"exec $X/y\"\nfind /docker-entrypoint.d -type f -executable -exec sh {} \\;\nexec -a name valkey-server\n";
    let ev = walk(s, &[], &[]);
    let got: Vec<String> = ev.iter().filter_map(|a| if let Event::Run(s) = &a.event { Some(s.clone()) } else { None }).collect();
    assert_eq!(
        got,
        [
            "gosu", "initdb", "su-exec", "redis-server", "setpriv", "nginx", "runuser", "php-fpm", "tini", "node", "chroot", "busybox", "env", "timeout",
            "nice", "mysqld", "dumb-init", "memcached", "runuser", "uwsgi", "bash", "find", "sh", "valkey-server"
        ]
    );
    assert_eq!(dynamic(&ev), ["$X/y"]);
    assert!(has(&ev, &Event::PathArg("/etc/u.ini".into())));
}

#[test]
fn assignments_export_local_readonly_concatenation_and_env() {
    let s = "A=/opt\nexport B=\"$A/app\"\nreadonly C=${B}/bin\nf() { local D=\"$C\"; \"$D/tool\" x; \"$E/run\"; }\nf\nexport G\n\"${MISSING:-/usr/libexec}/helper\"\nH=$(pwd)\n\"$H/x\"\n";
    let ev = walk(s, &[("E", "/srv/e")], &[]);
    let r = runs(&ev);
    assert!(r.contains(&"/opt/app/bin/tool".into()) && r.contains(&"/srv/e/run".into()) && r.contains(&"/usr/libexec/helper".into()) && r.contains(&"pwd".into()), "{r:?}");
    assert_eq!(dynamic(&ev), ["\"$H/x\""]);
}

#[test]
fn unparsable_text_is_none() {
    let read = |_: &str| None;
    assert!(run_script("if then fi (", None, "x", &[], &read).is_none());
}

/// The values of a `for` loop are the paths its body uses (the acceptance image debian-layers
/// reports on each with `[ -d "$p" ]`, `ls`, `cat`).
#[test]
fn for_loop_values_are_path_arguments() {
    let ev = walk("for p in /opt/a /srv/gone; do\n  [ -d \"$p\" ] && ls \"$p\"\ndone\n", &[], &[]);
    assert!(has(&ev, &Event::PathArg("/opt/a".into())), "{ev:?}");
    assert!(has(&ev, &Event::PathArg("/srv/gone".into())), "{ev:?}");
}
