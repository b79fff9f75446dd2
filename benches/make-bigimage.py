#!/usr/bin/env python3
"""Build the big benchmark image (issue 13): 20 gzip layers, 4 GB uncompressed and 200k files
at --scale 1 (both scale linearly). Layer 0 is the busybox (musl) image's layer, so `slim`
has a real app (/bin/sh). File contents are slices of this machine's /usr (binaries,
libraries, data), so they compress like real image content; sizes are log-normal (median
~5 KB, mean ~20 KB). Each later layer overwrites 2% of the previous layer's files and whites
out another 2%: real wasted bytes. Deterministic for a given machine and scale.

usage: make-bigimage.py OUT_DIR [--scale S]"""
import argparse, hashlib, json, os, random, shutil, subprocess, tarfile, io

LAYERS = 20
BUSYBOX = "/work/shared/images/busybox-1.38.0-musl.oci"


def content_pool(limit=128 << 20):
    """Real bytes to slice file contents from (read once, in a fixed order)."""
    buf = bytearray()
    for root in ["/usr/lib", "/usr/bin", "/usr/share"]:
        for d, dirs, fs in os.walk(root):
            dirs.sort()
            for f in sorted(fs):
                p = os.path.join(d, f)
                if os.path.isfile(p) and not os.path.islink(p):
                    try:
                        with open(p, "rb") as fh:
                            buf += fh.read(4 << 20)
                    except OSError:
                        continue
                if len(buf) >= limit:
                    return bytes(buf[:limit])
    return bytes(buf)


def plan_sizes(rng, files, total):
    sizes = [rng.lognormvariate(8.5, 1.6) for _ in range(files)]
    k = total / sum(sizes)
    return [min(int(s * k), 64 << 20) for s in sizes]


def copy_busybox(t):
    """Copy the busybox image's only layer's entries into tar t."""
    idx = json.load(open(f"{BUSYBOX}/index.json"))
    man = json.load(open(f"{BUSYBOX}/blobs/sha256/{idx['manifests'][0]['digest'][7:]}"))
    with tarfile.open(f"{BUSYBOX}/blobs/sha256/{man['layers'][0]['digest'][7:]}", "r:gz") as src:
        for m in src:
            t.addfile(m, src.extractfile(m) if m.isfile() else None)


class HashPipe:
    """Hashes the tar stream on its way to the compressor (the layer's diff_id)."""

    def __init__(self, w):
        self.w, self.h = w, hashlib.sha256()

    def write(self, b):
        self.h.update(b)
        return self.w.write(b)


def add(t, name, data):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), 0o644, 1700000000
    t.addfile(ti, io.BytesIO(data))


def write_layer(out, i, entries, pool, rng, prev):
    """Write layer i as a gzip blob; returns (descriptor, diff_id)."""
    tmp = f"{out}/blobs/sha256/.layer{i}"
    with open(tmp, "wb") as gz:
        p = subprocess.Popen(["pigz", "-p", "2", "-6", "-n"], stdin=subprocess.PIPE, stdout=gz)
        hp = HashPipe(p.stdin)
        with tarfile.open(fileobj=hp, mode="w|", format=tarfile.PAX_FORMAT) as t:
            if i == 0:
                copy_busybox(t)
            for name, size in entries:
                off = rng.randrange(0, max(1, len(pool) - size))
                add(t, name, pool[off:off + size])
            for j, name in enumerate(prev[: len(prev) // 25]):
                if j % 2:
                    d, b = os.path.split(name)
                    add(t, f"{d}/.wh.{b}", b"")
                else:
                    add(t, name, b"overwritten\n")
        p.stdin.close()
        if p.wait() != 0:
            raise SystemExit("pigz failed")
    h = hashlib.sha256()
    with open(tmp, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    os.rename(tmp, f"{out}/blobs/sha256/{h.hexdigest()}")
    desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + h.hexdigest(),
            "size": os.path.getsize(f"{out}/blobs/sha256/{h.hexdigest()}")}
    return desc, "sha256:" + hp.h.hexdigest()


def put(out, b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{out}/blobs/sha256/{h}", "wb").write(b)
    return {"digest": f"sha256:{h}", "size": len(b)}


def write_docs(out, descs, diff_ids):
    cfg = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh", "-c", "echo ok"]},
           "rootfs": {"type": "layers", "diff_ids": diff_ids},
           "history": [{"created_by": f"layer {i}"} for i in range(len(diff_ids))]}
    c = put(out, json.dumps(cfg).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **c}, "layers": descs}
    m = put(out, json.dumps(man).encode())
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
               "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, open(f"{out}/index.json", "w"))
    open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    rng = random.Random(13)
    files, total = int(200_000 * a.scale), int(4e9 * a.scale)
    sizes = plan_sizes(rng, files, total)
    pool = content_pool()
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(f"{a.out}/blobs/sha256")
    descs, diff_ids, prev = [], [], []
    per = files // LAYERS
    for i in range(LAYERS):
        names = [f"data/l{i:02d}/d{k // 1000:03d}/f{k:06d}.bin" for k in range(per)]
        entries = list(zip(names, sizes[i * per:(i + 1) * per]))
        d, diff = write_layer(a.out, i, entries, pool, rng, prev)
        descs.append(d)
        diff_ids.append(diff)
        prev = names
    write_docs(a.out, descs, diff_ids)
    print(f"{LAYERS} layers, {files} files, {sum(sizes) / 1e9:.2f} GB of content, "
          f"{sum(d['size'] for d in descs) / 1e6:.0f} MB compressed")


if __name__ == "__main__":
    main()
