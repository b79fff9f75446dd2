//! Static slim of third-party shapes on a real Debian image (the python-web acceptance image,
//! debootstrap + apt): an entrypoint script in the official images' style, and a Python app
//! that loads a library with ctypes, imports a plugin by name and reads data under /opt. The
//! default `slim` must give an image that answers like the original under runc.
mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// `base` plus one layer holding `extra`, with `runtime` as its config (blobs shared by copy).
fn derive(base: &Path, dir: &Path, extra: &[E], runtime: Value) -> PathBuf {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for e in std::fs::read_dir(base.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), blobs.join(e.file_name())).unwrap();
    }
    let rd = |d: &str| -> Value { serde_json::from_slice(&std::fs::read(blobs.join(d.trim_start_matches("sha256:"))).unwrap()).unwrap() };
    let put = |b: &[u8]| -> (String, u64) {
        let h = sha256_hex(b);
        std::fs::write(blobs.join(&h), b).unwrap();
        (format!("sha256:{h}"), b.len() as u64)
    };
    let idx: Value = serde_json::from_slice(&std::fs::read(base.join("index.json")).unwrap()).unwrap();
    let mut manifest = rd(idx["manifests"][0]["digest"].as_str().unwrap());
    let mut config = rd(manifest["config"]["digest"].as_str().unwrap());
    let raw = layer(extra);
    let (ld, ls) = put(&gzip(&raw));
    config["config"] = runtime;
    config["rootfs"]["diff_ids"].as_array_mut().unwrap().push(json!(format!("sha256:{}", sha256_hex(&raw))));
    config["history"].as_array_mut().unwrap().push(json!({"created":"2024-01-01T00:00:00Z","created_by":"test layer"}));
    manifest["layers"].as_array_mut().unwrap().push(json!({"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":ld,"size":ls}));
    let (cd, cs) = put(&serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = json!(cd);
    manifest["config"]["size"] = json!(cs);
    let (md, ms) = put(&serde_json::to_vec(&manifest).unwrap());
    write_index(dir, &md, ms)
}

/// The Debian base: the python-web acceptance image (None when the tools are missing locally).
fn debian_base() -> Option<PathBuf> {
    if !have_tool("runc") || !must_be_root() {
        return None;
    }
    acceptance_image("python-web")
}

/// Runs slim; returns (exit code, stderr).
fn slim(input: &Path, out: &Path, extra: &[&str]) -> (i32, String) {
    let o = run(imgslim().arg("slim").arg(input).arg("-o").arg(out).args(extra));
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn size_of(layout: &Path) -> u64 {
    walkdir::WalkDir::new(layout.join("blobs")).into_iter().filter_map(Result::ok).filter(|e| e.file_type().is_file()).map(|e| e.metadata().unwrap().len()).sum()
}

/// The privilege drop is read statically (setpriv must be kept) but not taken under runc here:
/// the test bundle has no CAP_SETUID. Everything else runs.
const ENTRY: &[u8] = br#"#!/bin/sh
set -e
: "${TOOL_HOME:=/opt/tool}"
. /usr/local/lib/entry-lib.sh
SETUP="$TOOL_HOME/bin/hello-setup"
docker_setup_env() {
	export GREETING_FILE="$DATA_DIR/greeting.txt"
}
_main() {
	docker_setup_env
	log "setting up"
	"$SETUP" "$GREETING_FILE"
	find "$DATA_DIR" -name '*.txt' -exec cksum {} +
	if [ "$(id -u)" = 0 ] && [ "${DROP_PRIVS:-no}" = yes ]; then
		exec setpriv --reuid=10001 --regid=10001 --clear-groups -- "$@"
	fi
	exec env -i PATH=/usr/bin:/bin timeout 30 nice -n 1 "$@"
}
_main "$@"
"#;

#[test]
fn entrypoint_script_shapes_slim_and_run() {
    let Some(base) = debian_base() else { return };
    let t = tempfile::tempdir().unwrap();
    let orig = derive(
        &base,
        &t.path().join("orig"),
        &[
            E::Dir("usr/local/bin/", 0o755),
            E::File("usr/local/bin/docker-entrypoint.sh", 0o755, ENTRY),
            E::Dir("usr/local/lib/", 0o755),
            E::File("usr/local/lib/entry-lib.sh", 0o644, b"DATA_DIR=/srv/data\nlog() { printf '%s\\n' \"$*\" >&2; }\n"),
            E::Dir("opt/", 0o755),
            E::Dir("opt/tool/", 0o755),
            E::Dir("opt/tool/bin/", 0o755),
            E::File("opt/tool/bin/hello-setup", 0o755, b"#!/bin/sh\nhead -c 5 \"$1\" | od -An -c\n"),
            E::Dir("srv/", 0o755),
            E::Dir("srv/data/", 0o755),
            E::File("srv/data/greeting.txt", 0o644, b"hello world\n"),
        ],
        json!({"Entrypoint":["/usr/local/bin/docker-entrypoint.sh"],"Cmd":["tac","/srv/data/greeting.txt"],
            "WorkingDir":"/app","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}),
    );
    let out = t.path().join("slim");
    let explain = ["/opt/tool/bin/hello-setup", "/usr/bin/cksum", "/usr/bin/tac", "/usr/bin/setpriv", "/usr/bin/timeout", "/usr/bin/od", "/srv/data/greeting.txt"];
    let args: Vec<&str> = explain.iter().flat_map(|p| ["--explain", p]).chain(["--strict"]).collect();
    // --strict: no risk is left; the script is understood.
    let (code, s) = slim(&orig, &out, &args);
    assert_eq!(code, 0, "{s}");
    for (p, why) in explain.iter().zip(["command '/opt/tool/bin/hello-setup'", "command 'cksum'", "Cmd, run by \"$@\"", "command 'setpriv'", "command 'timeout'", "command 'od' in /opt/tool/bin/hello-setup", "path named in"]) {
        let line = s.lines().find(|l| l.starts_with(&format!("{p}: "))).unwrap_or_else(|| panic!("no --explain {p}: {s}"));
        assert!(line.contains(": kept: ") && line.contains(why), "{line}");
    }
    let (c1, o1) = runc_run(&orig, &t.path().join("r1"), &["/usr/local/bin/docker-entrypoint.sh", "tac", "/srv/data/greeting.txt"]);
    let (c2, o2) = runc_run(&out, &t.path().join("r2"), &["/usr/local/bin/docker-entrypoint.sh", "tac", "/srv/data/greeting.txt"]);
    assert_eq!(c1, 0, "{o1}");
    assert!(o1.contains("h   e   l   l   o") && o1.contains("hello world") && o1.contains("/srv/data/greeting.txt"), "{o1}");
    assert_eq!((c2, &o2), (c1, &o1));
    let (a, b) = (size_of(&orig), size_of(&out));
    assert!(a > 3 * b, "slimmed {b} bytes from {a}");
}

const APP: &[u8] = br#"import ctypes, ctypes.util, importlib, json, sys
import extmod
sys.path.insert(0, "/opt/plugins")
name = ctypes.util.find_library('gmp')
gmp = ctypes.CDLL(name)
plugin = importlib.import_module('hello_plugin')
with open("/opt/appdata/config.json") as f:
    cfg = json.load(f)
print(name, hasattr(gmp, "__gmpz_init"), plugin.greet(cfg["who"]), extmod.VALUE)
"#;

#[test]
fn python_ctypes_importlib_and_opt_data_slim_and_run() {
    let Some(base) = debian_base() else { return };
    let t = tempfile::tempdir().unwrap();
    let orig = derive(
        &base,
        &t.path().join("orig"),
        &[
            E::File("app/main.py", 0o644, APP),
            E::Dir("opt/", 0o755),
            E::Dir("opt/plugins/", 0o755),
            E::File("opt/plugins/hello_plugin.py", 0o644, b"def greet(who):\n    return 'hello ' + who\n"),
            E::Dir("opt/appdata/", 0o755),
            E::File("opt/appdata/config.json", 0o644, br#"{"who": "slim"}"#),
            // On sys.path only through a .pth file of the kept dist-packages.
            E::Dir("opt/extlib/", 0o755),
            E::File("opt/extlib/extmod.py", 0o644, b"VALUE = 'from-pth'\n"),
            E::Dir("usr/local/lib/python3.11/dist-packages/", 0o755),
            E::File("usr/local/lib/python3.11/dist-packages/extlib.pth", 0o644, b"# extra\n/opt/extlib\n"),
        ],
        json!({"Cmd":["python3","/app/main.py"],"WorkingDir":"/app","User":"app",
            "Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}),
    );
    let out = t.path().join("slim");
    let report = t.path().join("r.json");
    let (code, s) = slim(&orig, &out, &["--report", report.to_str().unwrap(), "--explain", "/sbin/ldconfig", "--explain", "/usr/lib/x86_64-linux-gnu/libgmp.so.10"]);
    assert_eq!(code, 0, "{s}");
    assert!(s.contains("/usr/sbin/ldconfig: kept: root: python: the app imports ctypes"), "{s}");
    let gmp = s.lines().find(|l| l.starts_with("/usr/lib/x86_64-linux-gnu/libgmp.so.10: kept: ")).expect(&s);
    assert!(gmp.contains("python: find_library('gmp') in /app/main.py:4"), "{gmp}");
    let risks: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(risks["risks"], json!([]), "{s}");
    let (c1, o1) = runc_run(&orig, &t.path().join("r1"), &["python3", "/app/main.py"]);
    let (c2, o2) = runc_run(&out, &t.path().join("r2"), &["python3", "/app/main.py"]);
    assert_eq!((c1, o1.as_str()), (0, "libgmp.so.10 True hello slim from-pth\n"));
    assert_eq!((c2, &o2), (c1, &o1));
}
