#!/bin/sh
# Entrypoint in the style of the official redis image: options or a .conf file
# as the first argument run redis-server; as root, the data dir is handed to
# the redis user and the server is exec'ed without privileges (setpriv here,
# gosu in the official image).
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
	# The official image runs `find . \! -user redis -exec chown redis '{}' +`; the
	# entrypoint scanner does not see commands run by find -exec yet (reported).
	chown -R redis .
	exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
