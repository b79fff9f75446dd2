#!/usr/bin/env bash
# tomcat: Debian 12's tomcat10 (Tomcat 10.1 on OpenJDK 17) started like the
# official image (`catalina.sh run` in the foreground, CATALINA_HOME and
# CATALINA_BASE in Env), serving a JSP (compiled by Jasper on first request)
# and a static file from webapps/ROOT; HTTP connector on 18091, no shutdown port;
# JAVA_HOME in Env as the official image has it.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs

debian_base "$w"
apt_install "$r" tomcat10
oci_layer "$w" "apt-get install tomcat10"

sed -i 's/port="8080"/port="18091" address="127.0.0.1"/; s/<Server port="8005"/<Server port="-1"/' "$r/etc/tomcat10/server.xml"
rm -rf "$r/var/lib/tomcat10/webapps/ROOT"
cp -r "$ACCEPT_DIR/apps/tomcat/ROOT" "$r/var/lib/tomcat10/webapps/ROOT"
oci_layer "$w" "COPY ROOT webapps/; Connector 18091"

oci_config "$w" --config.cmd catalina.sh --config.cmd run \
    --config.env "PATH=/usr/share/tomcat10/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --config.env CATALINA_HOME=/usr/share/tomcat10 --config.env CATALINA_BASE=/var/lib/tomcat10 \
    --config.env CATALINA_TMPDIR=/tmp --config.env JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 --config.env LANG=C.UTF-8 \
    --config.workingdir /var/lib/tomcat10 --config.exposedports 18091/tcp
oci_finish "$w" tomcat
