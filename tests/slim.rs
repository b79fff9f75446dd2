//! `imgslim slim` on real images: the slimmed image must answer like the original under runc,
//! be smaller, and account for every path (kept with a reason, dropped by a named rule).
mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Runs slim; returns its human output (the summary and --explain answers, on stderr), with
/// the summary's line wrapping undone so phrases can be searched.
fn slim(input: &Path, out: &Path, extra: &[&str]) -> String {
    let o = run_ok(imgslim().arg("slim").arg(input).arg("-o").arg(out).args(extra));
    assert!(o.stdout.is_empty(), "human output belongs on stderr: {}", String::from_utf8_lossy(&o.stdout));
    flat(&String::from_utf8_lossy(&o.stderr))
}

fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

const TOOL: &[u8] = b"#!/bin/sh
# A CLI that uses coreutils-style tools through busybox applets.
set -eu
printf 'b 2\\na 1\\nc 3\\n' > /tmp/in.txt
sort /tmp/in.txt | awk '{ s += $2; print $1 } END { print \"sum\", s }' | sed -e 's/^/> /'
echo hello | gzip -c | gzip -dc | tr a-z A-Z
wc -l < /tmp/in.txt
";

/// The Alpine minirootfs as an uncompressed layer.
fn alpine_rootfs() -> Vec<u8> {
    let gz = std::fs::read(shared_images().join("alpine-minirootfs-3.20.3-x86_64.tar.gz")).unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
    raw
}

/// Alpine minirootfs plus a layer with a shell tool and the leftovers a careless build leaves.
fn alpine_tool_image(dir: &Path) -> PathBuf {
    let raw = alpine_rootfs();
    let junk = vec![b'x'; 300_000];
    let l2 = layer(&[
        E::Dir("usr/local/bin/", 0o755),
        E::File("usr/local/bin/tool.sh", 0o755, TOOL),
        E::Dir("usr/share/doc/", 0o755),
        E::Dir("usr/share/doc/tool/", 0o755),
        E::File("usr/share/doc/tool/README", 0o644, &junk),
        E::Dir("var/cache/apk/", 0o755),
        E::File("var/cache/apk/APKINDEX.tar.gz", 0o644, &junk),
        E::Dir("usr/include/", 0o755),
        E::File("usr/include/tool.h", 0o644, b"int x;"),
    ]);
    oci_layout(dir, &[raw, l2], json!({"Cmd":["/usr/local/bin/tool.sh"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}))
}

fn layout_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir.join("blobs")).into_iter().filter_map(|e| e.ok()).filter(|e| e.file_type().is_file()).map(|e| e.metadata().unwrap().len()).sum()
}

#[test]
fn shell_tool_on_alpine_answers_like_the_original() {
    if !have_tool("umoci") || !have_tool("runc") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let orig = alpine_tool_image(&t.path().join("orig"));
    let out = t.path().join("slim");
    let report = t.path().join("report.json");
    let summary = slim(&orig, &out, &["--report", report.to_str().unwrap(), "--explain", "/usr/bin/awk", "--explain", "/usr/share/doc/tool/README"]);
    assert!(summary.contains("/usr/bin/awk: kept"), "{summary}");
    assert!(summary.contains("/usr/share/doc/tool/README: dropped by rule"), "{summary}");
    let (c1, o1) = runc_run(&orig, &t.path().join("r1"), &["/usr/local/bin/tool.sh"]);
    let (c2, o2) = runc_run(&out, &t.path().join("r2"), &["/usr/local/bin/tool.sh"]);
    assert_eq!(c1, 0, "{o1}");
    assert_eq!((c2, &o2), (c1, &o1), "slimmed image must answer like the original");
    assert!(o1.contains("> sum 6") && o1.contains("HELLO"), "{o1}");
    let (before, after) = (layout_size(&orig), layout_size(&out));
    assert!(before > 2 * after, "expected at least 2x smaller: {before} -> {after}");
    // The report accounts for every path of the squashed original.
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let paths = r["paths"].as_array().unwrap();
    let squashed = t.path().join("sq");
    run_ok(imgslim().arg("squash").arg(&orig).arg("-o").arg(&squashed));
    let all = tree_manifest(&umoci_unpack(&squashed, &t.path().join("b")), false);
    assert_eq!(paths.len(), all.len(), "every path has a decision");
    for p in paths {
        let why = p["why"].as_str().unwrap();
        assert!(!why.is_empty(), "{p}");
        if p["keep"] == false {
            assert!(p["rule"].as_str().is_some_and(|r| !r.is_empty()), "dropped without a rule: {p}");
        }
    }
    let rule_of = |path: &str| paths.iter().find(|p| p["path"] == path).map(|p| p["rule"].clone()).unwrap();
    assert_eq!(rule_of("/var/cache/apk/APKINDEX.tar.gz"), "apk-cache");
    assert_eq!(rule_of("/usr/include/tool.h"), "headers");
    assert!(r["rules"].as_array().unwrap().iter().any(|x| x["name"] == "apk-cache" && x["bytes"] == 300_000));
}

#[test]
fn busybox_images_answer_like_the_original() {
    if !have_tool("umoci") || !have_tool("runc") {
        return;
    }
    let probe = ["sh", "-c", "echo ok; ls /bin | wc -l; echo abc | sed s/b/X/; id -u"];
    for flavor in ["glibc", "musl"] {
        let t = tempfile::tempdir().unwrap();
        let orig = shared_images().join(format!("busybox-1.38.0-{flavor}.oci"));
        let out = t.path().join("slim");
        slim(&orig, &out, &[]);
        let (c1, o1) = runc_run(&orig, &t.path().join("r1"), &probe);
        let (c2, o2) = runc_run(&out, &t.path().join("r2"), &probe);
        assert_eq!(c1, 0, "{o1}");
        assert_eq!((c2, o2), (c1, o1), "{flavor}");
    }
}

#[test]
fn dry_run_writes_nothing_and_output_is_deterministic() {
    let t = tempfile::tempdir().unwrap();
    let orig = alpine_tool_image(&t.path().join("orig"));
    let out = t.path().join("never");
    let o = run_ok(imgslim().arg("slim").arg(&orig).arg("-o").arg(&out).arg("--dry-run"));
    assert!(!out.exists());
    let s = String::from_utf8_lossy(&o.stderr);
    assert!(s.contains("dry run") && s.contains("apk-cache"), "{s}");
    let (a, b) = (t.path().join("a.tar"), t.path().join("b.tar"));
    slim(&orig, &a, &["--format", "oci-archive"]);
    slim(&orig, &b, &["--format", "oci-archive"]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn clean_level_drops_only_rule_named_paths() {
    if !have_tool("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let orig = alpine_tool_image(&t.path().join("orig"));
    let out = t.path().join("clean");
    slim(&orig, &out, &["--level", "clean"]);
    let sq = t.path().join("sq");
    run_ok(imgslim().arg("squash").arg(&orig).arg("-o").arg(&sq));
    let before = tree_manifest(&umoci_unpack(&sq, &t.path().join("b1")), true);
    let after = tree_manifest(&umoci_unpack(&out, &t.path().join("b2")), true);
    let gone: Vec<&String> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    assert!(gone.iter().any(|k| k.as_str() == "var/cache/apk/APKINDEX.tar.gz"), "{gone:?}");
    assert!(gone.iter().any(|k| k.as_str() == "usr/include/tool.h"), "{gone:?}");
    for g in &gone {
        assert!(g.starts_with("var/cache/apk") || g.starts_with("usr/include") || g.starts_with("usr/share/doc") || g.starts_with("usr/share/man"), "clean level removed {g}");
    }
    for (k, v) in &after {
        // The apk database is rewritten (--package-db prune) to name only what is left.
        if k == "lib/apk/db/installed" {
            continue;
        }
        assert_eq!(before.get(k), Some(v), "clean level changed {k}");
    }
    let db = std::fs::read_to_string(t.path().join("b2/rootfs/lib/apk/db/installed")).unwrap();
    let mut dir = String::new();
    for l in db.lines() {
        if let Some(d) = l.strip_prefix("F:") {
            dir = d.to_string();
            assert!(after.contains_key(&dir), "installed names the gone directory {dir}");
        } else if let Some(f) = l.strip_prefix("R:") {
            assert!(after.contains_key(&format!("{dir}/{f}")), "installed names the gone file {dir}/{f}");
        }
    }
}

#[test]
fn distroless_runs_as_nonroot_without_a_package_manager() {
    if !have_tool("umoci") || !have_tool("runc") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let orig = alpine_tool_image(&t.path().join("orig"));
    let out = t.path().join("dl");
    let s = slim(&orig, &out, &["--distroless", "--cmd", "[\"/bin/sh\",\"-c\",\"id -u; id -g; ls -ld /tmp\"]", "--keep", "/usr/bin/id"]);
    assert!(s.contains("65532"), "{s}");
    let (c, o) = runc_run(&out, &t.path().join("r"), &["/bin/sh", "-c", "id -u; id -g; stat -c %a /tmp; test -e /sbin/apk || echo no-apk"]);
    assert_eq!(c, 0, "{o}");
    // runc_run keeps the process user from the image config.
    assert_eq!(o, "65532\n65532\n1777\nno-apk\n");
}

const ENTRY: &[u8] = b"#!/bin/sh
set -e
setup() {
    mkdir -p /tmp/state
}
setup
if [ \"$1\" = dyn ]; then
    \"$TOOLDIR/helper\" --go
    \"$BIN/initdb\" -D /tmp/state
fi
exec \"$@\"
";

/// Alpine plus an entrypoint script that runs its Cmd with `exec \"$@\"`, a command built at
/// run time, and an /opt tree nothing names.
fn alpine_entrypoint_image(dir: &Path) -> PathBuf {
    let raw = alpine_rootfs();
    let l2 = layer(&[
        E::Dir("usr/local/bin/", 0o755),
        E::File("usr/local/bin/entry.sh", 0o755, ENTRY),
        E::Dir("opt/", 0o755),
        E::Dir("opt/vendor/", 0o755),
        E::File("opt/vendor/data.bin", 0o644, &[7u8; 5000]),
        E::Dir("usr/lib/tool/", 0o755),
        E::Dir("usr/lib/tool/bin/", 0o755),
        E::File("usr/lib/tool/bin/initdb", 0o755, b"#!/bin/sh\ntouch \"$2/ok\"\n"),
    ]);
    oci_layout(
        dir,
        &[raw, l2],
        json!({"Entrypoint":["/usr/local/bin/entry.sh"],"Cmd":["wc","-c","/etc/alpine-release"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}),
    )
}

fn risks_of(report: &Path) -> Vec<Value> {
    risks_in(&std::fs::read(report).unwrap())
}

fn risks_in(json: &[u8]) -> Vec<Value> {
    let v: Value = serde_json::from_slice(json).unwrap();
    v["risks"].as_array().unwrap().clone()
}

#[test]
fn entrypoint_runs_cmd_and_risks_are_stated_and_strict_refuses() {
    if !have_tool("umoci") || !have_tool("runc") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let orig = alpine_entrypoint_image(&t.path().join("orig"));
    let out = t.path().join("slim");
    let report = t.path().join("r.json");
    let s = slim(&orig, &out, &["--report", report.to_str().unwrap()]);
    // `exec "$@"` runs the Cmd: wc is a root and works in the slimmed image.
    assert!(s.contains("root: /usr/bin/wc (Cmd, run by \"$@\" in /usr/local/bin/entry.sh"), "{s}");
    assert!(!s.contains("command 'setup' not found"), "a function defined in the script is not a missing command: {s}");
    // `"$BIN/initdb"`: unresolved, but its last component is literal: every initdb is kept, and said.
    assert!(s.contains("root: /usr/lib/tool/bin/initdb (every executable named 'initdb' ('$BIN/initdb' in /usr/local/bin/entry.sh (Entrypoint) is built at run time))"), "{s}");
    assert!(s.contains("line 9: '$BIN/initdb' is built at run time: every executable named 'initdb' in the image is kept"), "{s}");
    let (c1, o1) = runc_run(&orig, &t.path().join("r1"), &["/usr/local/bin/entry.sh", "wc", "-c", "/etc/alpine-release"]);
    let (c2, o2) = runc_run(&out, &t.path().join("r2"), &["/usr/local/bin/entry.sh", "wc", "-c", "/etc/alpine-release"]);
    assert_eq!(c1, 0, "{o1}");
    assert_eq!((c2, &o2), (c1, &o1));
    // The risks block comes last, each risk with where it comes from and the fix.
    let block = &s[s.rfind("risks (").expect(&s)..];
    assert!(block.contains("[unresolved-command] /usr/local/bin/entry.sh (Entrypoint), line 8:") && block.contains("--trace"), "{block}");
    assert!(block.contains("[dropped-tree] /opt/vendor:") && block.contains("--keep '/opt/vendor'"), "{block}");
    let kinds: Vec<String> = risks_of(&report).iter().map(|r| r["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["dropped-tree", "unresolved-command"], "{kinds:?}");

    // --strict: exit 3 (policy) and nothing written.
    let strict_out = t.path().join("strict");
    let o = run(imgslim().arg("slim").arg(&orig).arg("-o").arg(&strict_out).arg("--strict"));
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--strict: 2 risk(s)"));
    assert!(!strict_out.exists(), "--strict wrote an image");
    // Kept with --keep, the tree is no risk; dropping the Cmd's program is a broken root.
    let o = run(imgslim().arg("slim").arg(&orig).arg("--dry-run").args(["--keep", "/opt/vendor", "--keep", "/nope/**", "--drop", "/usr/bin/wc", "--report", "-"]));
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning: --keep /nope/** matches nothing in the image"));
    let risks = risks_in(&o.stdout);
    assert!(risks.iter().all(|r| r["kind"] != "dropped-tree"), "{risks:?}");
    let broken: Vec<&Value> = risks.iter().filter(|r| r["kind"] == "broken-root").collect();
    assert_eq!(broken.len(), 1, "{risks:?}");
    assert!(broken[0]["what"].as_str().unwrap().contains("/usr/bin/wc is a root but is dropped (--drop /usr/bin/wc)"), "{risks:?}");
    // An Entrypoint that is not in the image is a broken root.
    let o = run_ok(imgslim().arg("slim").arg(&orig).arg("--dry-run").args(["--entrypoint", "[\"/no/such\"]", "--report", "-"]));
    assert!(risks_in(&o.stdout).iter().any(|r| r["kind"] == "broken-root" && r["at"] == "Entrypoint"), "{:?}", risks_in(&o.stdout));
}

#[test]
fn keep_of_an_elf_file_keeps_its_libraries() {
    if !have_tool("umoci") || !have_tool("runc") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let orig = alpine_entrypoint_image(&t.path().join("orig"));
    let out = t.path().join("slim");
    let s = slim(&orig, &out, &["--keep", "/sbin/apk", "--explain", "/lib/libapk.so.2.14.0"]);
    assert!(s.contains("/lib/libapk.so.2.14.0: kept:") && s.contains("root: --keep /sbin/apk"), "{s}");
    let (c1, o1) = runc_run(&orig, &t.path().join("r1"), &["/sbin/apk", "--version"]);
    let (c2, o2) = runc_run(&out, &t.path().join("r2"), &["/sbin/apk", "--version"]);
    assert_eq!(c1, 0, "{o1}");
    assert_eq!((c2, &o2), (c1, &o1), "the kept program must run");
}

#[test]
fn clean_level_keeps_package_manager_and_drop_rows_per_glob() {
    let t = tempfile::tempdir().unwrap();
    let orig = alpine_tool_image(&t.path().join("orig"));
    let o = run_ok(imgslim().arg("slim").arg(&orig).args(["--dry-run", "--level", "clean", "--explain", "/sbin/apk", "--explain", "/usr/share/doc/tool/README"]).args(["--drop", "/usr/bin/w[c]", "--drop", "/etc/motd", "--drop", "/nope/*"]));
    let s = flat(&String::from_utf8_lossy(&o.stderr));
    // apk is a package manager: the minimal level's business, not clean's.
    assert!(s.contains("/sbin/apk: kept: clean level"), "{s}");
    assert!(s.contains("/usr/share/doc/tool/README: dropped by rule 'docs'"), "{s}");
    assert!(s.contains(" 1 file --drop /etc/motd (user)"), "{s}");
    assert!(s.contains(" 1 file --drop /usr/bin/w[c] (user)"), "{s}");
    assert!(s.contains("warning: --drop /nope/* matches nothing in the image"), "{s}");
    assert!(!s.contains("warning: --drop /etc/motd matches nothing"), "{s}");
}
