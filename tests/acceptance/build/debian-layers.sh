#!/usr/bin/env bash
# debian-layers: minbase bookworm in 5 real layers, exercising everything a
# squash must get exactly right: whiteouts of files and whole directories,
# file<->directory<->symlink type changes across layers, in-layer hardlinks,
# setuid/setgid/sticky bits, symlinks, long and non-ASCII names, a file whose
# content is rewritten in a later layer.
#   usage: debian-layers.sh WORKDIR   (writes WORKDIR/oci + docker-archive.tar)
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
w=$1 r=$1/bundle/rootfs

debian_base "$w" # layer 1

# Layer 2: packages via apt, leaving lists and .debs behind like a careless Dockerfile.
apt_install "$r" procps less ca-certificates
mkdir -p "$r/opt/app/data/sub" "$r/opt/dir-becomes-file" "$r/opt/dir-becomes-link/x" "$r/srv/gone/deep/er"
echo "v1" >"$r/opt/app/data/config"
echo "to be deleted" >"$r/opt/app/data/sub/old.txt"
echo "dir content" >"$r/opt/dir-becomes-file/inner"
echo "x" >"$r/opt/dir-becomes-link/x/y"
echo "was a file" >"$r/opt/file-becomes-dir"
ln -s /opt/app/data "$r/opt/link-becomes-dir"
for i in 1 2 3; do echo "gone $i" >"$r/srv/gone/deep/er/f$i"; done
oci_layer "$w" "apt-get install procps less ca-certificates && seed /opt /srv"

# Layer 3: deletions -> real .wh. entries (files and whole directory trees).
rm -rf "$r/srv/gone" "$r/opt/app/data/sub/old.txt" "$r/usr/share/doc/less" "$r/usr/share/doc/procps" \
    "$r/usr/share/info"
rm -f "$r/etc/motd" "$r"/usr/share/locale/*/LC_MESSAGES/procps-ng.mo 2>/dev/null || true
echo "v2 rewritten in a later layer" >"$r/opt/app/data/config"
oci_layer "$w" "rm -rf docs /srv/gone; rewrite config"

# Layer 4: type changes, links, modes, awkward names.
rm -rf "$r/opt/dir-becomes-file"; echo "now a file" >"$r/opt/dir-becomes-file"
rm -rf "$r/opt/dir-becomes-link"; ln -s /etc "$r/opt/dir-becomes-link"
rm -f "$r/opt/file-becomes-dir"; mkdir -p "$r/opt/file-becomes-dir"; echo inside >"$r/opt/file-becomes-dir/f"
rm -f "$r/opt/link-becomes-dir"; mkdir "$r/opt/link-becomes-dir"; echo real >"$r/opt/link-becomes-dir/r"
# Gone-then-back: a directory whited out in layer 3 reappears with new content.
mkdir -p "$r/srv/gone"; echo "reborn" >"$r/srv/gone/new"
mkdir -p "$r/usr/local/bin"
cat >"$r/usr/local/bin/report" <<'SH'
#!/bin/sh
# Deterministic fingerprint of what the squash must preserve.
echo "config: $(cat /opt/app/data/config)"
for p in /opt/dir-becomes-file /opt/dir-becomes-link /opt/file-becomes-dir /opt/link-becomes-dir /srv/gone /srv/gone/deep; do
  if [ -L "$p" ]; then echo "$p: symlink -> $(readlink "$p")"
  elif [ -d "$p" ]; then echo "$p: dir [$(ls -A "$p" | tr '\n' ' ')]"
  elif [ -f "$p" ]; then echo "$p: file $(cat "$p")"
  else echo "$p: absent"; fi
done
stat -c '%n %A %U:%G %h' /usr/local/bin/suid-tool /usr/local/bin/hl-a /usr/local/bin/hl-b /var/shared-tmp /opt/setgid-dir
[ "$(stat -c %i /usr/local/bin/hl-a)" = "$(stat -c %i /usr/local/bin/hl-b)" ] && echo "hardlink: same inode" || echo "hardlink: BROKEN"
ps --version
SH
chmod 755 "$r/usr/local/bin/report"
printf '#!/bin/sh\necho hardlinked tool\n' >"$r/usr/local/bin/hl-a"; chmod 755 "$r/usr/local/bin/hl-a"
ln "$r/usr/local/bin/hl-a" "$r/usr/local/bin/hl-b"
cp "$r/bin/true" "$r/usr/local/bin/suid-tool"; chmod 4755 "$r/usr/local/bin/suid-tool"
mkdir -p "$r/var/shared-tmp" "$r/opt/setgid-dir"; chmod 1777 "$r/var/shared-tmp"; chmod 2775 "$r/opt/setgid-dir"
ln -s report "$r/usr/local/bin/report-link"
ln -s /nonexistent/target "$r/opt/dangling-link"
long=$r/opt/long; for i in 1 2 3 4 5 6; do long=$long/directory-name-that-is-quite-long-$i; done
mkdir -p "$long"; echo "pax path" >"$long/file-with-a-long-name-beyond-one-hundred-bytes.txt"
echo "ünïcödé" >"$r/opt/ünïcödé-名前.txt"
: >"$r/opt/empty-file"
oci_layer "$w" "type changes, hardlink, setuid, symlinks, long names"

oci_config "$w" --config.cmd /usr/local/bin/report \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.env LANG=C.UTF-8 \
    --config.workingdir /opt
oci_finish "$w" debian-layers
