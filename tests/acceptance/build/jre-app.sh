#!/usr/bin/env bash
# jre-app: Debian openjdk-17-jre-headless running a jar compiled here with
# javac (reads a bundled resource, SHA-256, CRC32, tzdb lookup).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs
need_tools javac jar

# Compile on the host: the image carries only the JRE, like a multi-stage build.
src=$ACCEPT_DIR/apps/jre-app/src/main
mkdir -p "$w/classes"
javac --release 17 -d "$w/classes" "$src/java/accept/Main.java"
cp -r "$src/resources/." "$w/classes/"
# Fixed entry dates so the jar (and the layer) is reproducible.
jar --create --date=2023-11-14T22:13:20Z --file "$w/app.jar" --main-class accept.Main -C "$w/classes" .

debian_base "$w"
apt_install "$r" openjdk-17-jre-headless
oci_layer "$w" "apt-get install openjdk-17-jre-headless"

install -D -m 644 "$w/app.jar" "$r/opt/app/app.jar"
rm -rf "$w/classes" "$w/app.jar"
oci_layer "$w" "COPY app.jar"

oci_config "$w" --config.entrypoint java --config.entrypoint -jar --config.entrypoint /opt/app/app.jar \
    --config.env "$DEB_PATH" --config.env JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    --config.user nobody --config.workingdir /opt/app
oci_finish "$w" jre-app
