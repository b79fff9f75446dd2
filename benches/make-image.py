#!/usr/bin/env python3
"""Build a realistic multi-layer OCI image for benchmarks: N gzip layers of real files from
this machine's /usr (binaries, libraries, data), ~TARGET_MB uncompressed in all, with later
layers overwriting and whiting out files of earlier ones. Deterministic for a given machine."""
import gzip, hashlib, io, json, os, sys, tarfile
from concurrent.futures import ProcessPoolExecutor

out, layers, target_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per_layer = target_mb * 1_000_000 // layers

def files():
    for root in ["/usr/lib", "/usr/bin", "/usr/share", "/usr/libexec", "/usr/include"]:
        for d, dirs, fs in os.walk(root):
            dirs.sort()
            for f in sorted(fs):
                p = os.path.join(d, f)
                if os.path.isfile(p) and not os.path.islink(p):
                    try:
                        yield p, os.path.getsize(p)
                    except OSError:
                        pass

def plan():
    chunks, cur, size = [], [], 0
    for p, s in files():
        if s > 50_000_000:
            continue
        cur.append(p)
        size += s
        if size >= per_layer:
            chunks.append(cur)
            cur, size = [], 0
            if len(chunks) == layers:
                break
    return chunks

def build(args):
    i, paths, prev = args
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for p in paths:
            ti = t.gettarinfo(p, arcname=f"l{i}" + p)
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            with open(p, "rb") as f:
                t.addfile(ti, f)
        # Overwrite and delete a slice of the previous layer's files: real wasted bytes.
        for j, p in enumerate(prev[: len(prev) // 10]):
            name = f"l{i-1}" + p
            if j % 2:
                ti = tarfile.TarInfo(os.path.dirname(name) + "/.wh." + os.path.basename(name))
                t.addfile(ti, io.BytesIO(b""))
            else:
                data = b"overwritten\n"
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    data = raw.getvalue()
    gz = gzip.compress(data, compresslevel=6, mtime=0)
    return i, hashlib.sha256(data).hexdigest(), gz

chunks = plan()
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
jobs = [(i, c, chunks[i - 1] if i else []) for i, c in enumerate(chunks)]
results = sorted(ProcessPoolExecutor(2).map(build, jobs))
descs, diff_ids = [], []
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{out}/blobs/sha256/{h}", "wb").write(b)
    return f"sha256:{h}", len(b)
for i, diff, gz in results:
    d, s = put(gz)
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
    diff_ids.append("sha256:" + diff)
cfg = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
       "rootfs": {"type": "layers", "diff_ids": diff_ids},
       "history": [{"created_by": f"layer {i}"} for i in range(len(diff_ids))]}
cd, cs = put(json.dumps(cfg).encode())
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs}, "layers": descs}
md, ms = put(json.dumps(man).encode())
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
           "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
print(f"{len(descs)} layers, {sum(d['size'] for d in descs)/1e6:.0f} MB compressed")
