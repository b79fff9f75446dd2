"""python-web acceptance app: stdlib HTTP server touching json, sqlite3,
hashlib, ssl (CA bundle read at run time) and one pip-installed package."""
import hashlib
import json
import os
import sqlite3
import ssl
from http.server import BaseHTTPRequestHandler, HTTPServer

import six  # third-party, installed with pip in the image

PORT = int(os.environ.get("PORT", "18081"))


def data():
    db = sqlite3.connect(":memory:")
    db.execute("create table t (k text primary key, v integer)")
    db.executemany("insert into t values (?, ?)", [(f"k{i:03d}", i * i % 97) for i in range(200)])
    total, top = db.execute("select sum(v), max(v) from t").fetchone()
    rows = db.execute("select k, v from t order by v desc, k limit 5").fetchall()
    digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
    ctx = ssl.create_default_context()  # loads /etc/ssl/certs via OpenSSL config
    return {
        "sum": total,
        "max": top,
        "top": rows,
        "sha256": digest,
        "blake2b": hashlib.blake2b(b"imgslim", digest_size=16).hexdigest(),
        "sqlite": sqlite3.sqlite_version,
        "openssl": ssl.OPENSSL_VERSION,
        "ca_certs": ctx.cert_store_stats()["x509_ca"],
        "six": six.ensure_str(b"six-ok"),
    }


class Handler(BaseHTTPRequestHandler):
    def send(self, code, body, ctype):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self.send(200, b"ok\n", "text/plain")
        elif self.path == "/data":
            self.send(200, json.dumps(data(), sort_keys=True).encode() + b"\n", "application/json")
        elif self.path == "/static":
            with open("/app/static/hello.txt", "rb") as f:
                self.send(200, f.read(), "text/plain")
        else:
            self.send(404, b"not found\n", "text/plain")

    def log_message(self, *args):  # quiet: logs carry timestamps
        pass


if __name__ == "__main__":
    HTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
