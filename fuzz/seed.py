#!/usr/bin/env python3
"""Write the fuzz seeds to fuzz/corpus/<target>/seed-* from real inputs: the test images in
../shared/images beside the checkout (or $IMGSLIM_IMAGES), the built-in profiles, the acceptance apps' scripts,
and `imgslim pack` output of real executables. Documents of one input are joined with the
separator of src/fuzz.rs. Usage: fuzz/seed.py [PATH/TO/imgslim]"""
import hashlib, io, json, os, subprocess, sys, tarfile, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# As the tests find them: ../shared/images beside the checkout.
IMAGES = os.environ.get("IMGSLIM_IMAGES", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "images"))
SEP = b"\n--8<--imgslim--8<--\n"
GLIBC = IMAGES + "/busybox-1.38.0-glibc.oci"
ALPINE = IMAGES + "/alpine-minirootfs-3.20.3-x86_64.tar.gz"


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def members(path, want):
    """(TarInfo, bytes) of the members of a real layer/rootfs tar that `want` selects."""
    with tarfile.open(path) as t:
        for m in t.getmembers():
            if want(m):
                yield m, (t.extractfile(m).read() if m.isfile() else None)


def glibc_layer():
    index = json.load(open(GLIBC + "/index.json"))
    man = json.load(open(GLIBC + "/blobs/" + index["manifests"][0]["digest"].replace(":", "/")))
    return GLIBC + "/blobs/" + man["layers"][0]["digest"].replace(":", "/")


def tar_of(entries, fmt):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for m, data in entries:
            t.addfile(m, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def info(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644):
    m = tarfile.TarInfo(name)
    m.type, m.linkname, m.mode, m.size = kind, link, mode, len(data) if kind == tarfile.REGTYPE else 0
    return m, (data if kind == tarfile.REGTYPE else None)


def small_etc(m):
    return m.name.lstrip("./").startswith("etc") and (not m.isfile() or m.size < 2048)


def layer_seeds():
    alpine = list(members(ALPINE, small_etc))
    busybox = list(members(glibc_layer(), small_etc))
    put("layer", "alpine-etc-gnu", tar_of(alpine, tarfile.GNU_FORMAT))
    put("layer", "busybox-etc-pax", tar_of(busybox, tarfile.PAX_FORMAT))
    long = "usr/share/" + "/".join(["d" * 60] * 4) + "/file-with-a-300-byte-path"
    upper = [
        info("etc/.wh.passwd"),
        info("etc/apk/.wh..wh..opq"),
        info("etc/apk", tarfile.DIRTYPE, mode=0o755),
        info("etc/group-link", tarfile.LNKTYPE, link="etc/group"),
        info("etc/climb", tarfile.SYMTYPE, link="../../../../etc/shadow"),
        info(long, data=b"long\n"),
        info("opt/caf\xe9-\udcff", data=b"non-utf8 name\n"),
        info("./run/.wh.lock"),
        info("run/lock", tarfile.DIRTYPE, mode=0o1777),
        info("dev/null", tarfile.CHRTYPE, mode=0o666),
        info("var/fifo", tarfile.FIFOTYPE),
    ]
    top = [info("etc/.wh.group"), info("etc/group", data=b"root:x:0:\n"), info("etc/group-link2", tarfile.LNKTYPE, link="etc/group-link")]
    put("layer", "stack-whiteouts-gnu", SEP.join([tar_of(alpine, tarfile.GNU_FORMAT), tar_of(upper, tarfile.GNU_FORMAT), tar_of(top, tarfile.USTAR_FORMAT)]))
    put("layer", "stack-whiteouts-pax", SEP.join([tar_of(busybox, tarfile.PAX_FORMAT), tar_of(upper, tarfile.PAX_FORMAT)]))


def image_seeds():
    index = open(GLIBC + "/index.json", "rb").read()
    d = json.loads(index)["manifests"][0]
    man_bytes = open(GLIBC + "/blobs/" + d["digest"].replace(":", "/"), "rb").read()
    man = json.loads(man_bytes)
    cfg = open(GLIBC + "/blobs/" + man["config"]["digest"].replace(":", "/"), "rb").read()
    layer = tar_of(list(members(ALPINE, small_etc))[:8], tarfile.PAX_FORMAT)
    sub = lambda b, pairs: [b := b.replace(k.encode(), v.encode()) for k, v in pairs][-1]
    index = sub(index, [(d["digest"], "@MANIFEST@"), ('"size": %d' % d["size"], '"size": @MANIFEST_SIZE@')])
    lay = man["layers"][0]
    man_t = sub(man_bytes, [(man["config"]["digest"], "@CONFIG@"), ('"size":%d' % man["config"]["size"], '"size":@CONFIG_SIZE@'),
                            ('"size": %d' % man["config"]["size"], '"size": @CONFIG_SIZE@'),
                            (lay["digest"], "@LAYER@"), ('"size":%d' % lay["size"], '"size":@LAYER_SIZE@'),
                            ('"size": %d' % lay["size"], '"size": @LAYER_SIZE@'), ("tar+gzip", "tar")])
    diff_id = json.loads(cfg)["rootfs"]["diff_ids"][0]
    cfg_t = cfg.replace(diff_id.encode(), b"@LAYER@")
    # docker save names members by hex digest; the harness stores them under those names.
    docker = json.dumps([{"Config": "@CONFIG_HEX@.json", "RepoTags": ["busybox:fuzz"], "Layers": ["@LAYER_HEX@/layer.tar"]}]).encode()
    put("image", "busybox-oci", SEP.join([index, man_t, cfg_t, b"", layer]))
    put("image", "busybox-oci-and-docker", SEP.join([index, man_t, cfg_t, docker, layer]))
    put("image", "busybox-docker", SEP.join([b"", b"", cfg_t, docker, layer]))


def elf_seeds():
    glibc = {m.name: data for m, data in members(glibc_layer(), lambda m: m.isfile() and m.size < 70000)}
    musl = {m.name.lstrip("./"): data for m, data in members(ALPINE, lambda m: m.isfile() and m.size < 70000)}
    conf = b"include /etc/ld.so.conf.d/*.conf\n/opt/lib\n/usr/local/lib\n"
    put("elf", "glibc-getconf", SEP.join([glibc["bin/getconf"], conf, glibc["lib/libpthread.so.0"], glibc["lib/libnss_dns.so.2"], glibc["lib/libnss_files.so.2"]]))
    put("elf", "glibc-libresolv", SEP.join([glibc["lib/libresolv.so.2"], b"", glibc["lib/libnss_compat.so.2"]]))
    put("elf", "musl-ssl-client", SEP.join([musl["usr/bin/ssl_client"], conf, musl["usr/lib/engines-3/capi.so"]]))
    put("elf", "musl-iconv", musl["usr/bin/iconv"])


def profile_seeds():
    for f in sorted(os.listdir(ROOT + "/profiles")):
        if f.endswith(".toml"):
            put("profile", f[:-5], open(ROOT + "/profiles/" + f, "rb").read())


def script_seeds():
    for m, data in members(ALPINE, lambda m: m.isfile() and m.size < 8192):
        if data.startswith(b"#!"):
            put("script", "alpine-" + m.name.strip("./").replace("/", "-"), data)
    apps = ROOT + "/tests/acceptance/apps"
    for app in sorted(os.listdir(apps)):
        for f in sorted(os.listdir(os.path.join(apps, app))):
            p = os.path.join(apps, app, f)
            if os.path.isfile(p) and os.path.getsize(p) < 8192 and open(p, "rb").read(2) == b"#!":
                put("script", app + "-" + f, open(p, "rb").read())


def pack_seeds(imgslim):
    progs = {m.name.lstrip("./"): data for m, data in members(ALPINE, lambda m: m.name.endswith(("bin/iconv", "bin/ssl_client")))}
    progs.update({m.name: data for m, data in members(glibc_layer(), lambda m: m.name == "bin/getconf")})
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in sorted(progs.items()):
            src = os.path.join(tmp, "in")
            open(src, "wb").write(data)
            os.chmod(src, 0o755)
            for method in ["lzma", "zstd"]:
                out = os.path.join(tmp, "out")
                r = subprocess.run([imgslim, "pack", src, "-o", out, "--any-size", "--force", "--pack-method", method, "--allow-larger"], capture_output=True)
                if r.returncode == 0:
                    put("pack_unpack", name.replace("/", "-") + "-" + method, open(out, "rb").read())
                else:
                    print("pack", name, method, "failed:", r.stderr.decode().strip(), file=sys.stderr)


def jar_seeds():
    """Debian's jars (pom.properties, OSGi manifests), and a war nesting one, as the SBOM reads them."""
    import zipfile
    jars = [j for j in ("commons-cli-1.5.0.jar", "commons-io-2.11.0.jar") if os.path.exists("/usr/share/java/" + j)]
    for j in jars:
        put("jar", j, open("/usr/share/java/" + j, "rb").read())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nImplementation-Title: app\nImplementation-Version: 1.0\n")
        z.writestr("META-INF/maven/org.example/app/pom.properties", "groupId=org.example\nartifactId=app\nversion=1.0\n")
        for j in jars[:1]:
            z.writestr("WEB-INF/lib/" + j, open("/usr/share/java/" + j, "rb").read())
    put("jar", "war", buf.getvalue())


if __name__ == "__main__":
    layer_seeds()
    image_seeds()
    elf_seeds()
    profile_seeds()
    script_seeds()
    jar_seeds()
    pack_seeds(sys.argv[1] if len(sys.argv) > 1 else ROOT + "/target/debug/imgslim")
    for t in sorted(os.listdir(HERE + "/corpus")):
        d = HERE + "/corpus/" + t
        seeds = [f for f in os.listdir(d) if f.startswith("seed-")]
        print(f"{t}: {len(seeds)} seeds, {sum(os.path.getsize(d + '/' + f) for f in seeds)} bytes")
