//! The `--json` documents against the README's examples: the same fields, recursively
//! (arrays by their first element, when both have one), `"schema": 1` everywhere.
mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// The README's `<!-- json-example: NAME -->` blocks.
fn examples() -> BTreeMap<String, Value> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut out = BTreeMap::new();
    for part in readme.split("<!-- json-example: ").skip(1) {
        let (name, rest) = part.split_once(" -->").unwrap();
        let body = rest.split_once("```json\n").unwrap().1.split_once("```").unwrap().0;
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("README example {name}: {e}"));
        out.insert(name.to_string(), v);
    }
    out
}

/// Free-form maps: their keys are the image's, not the schema's.
const FREE: &[&str] = &["labels", "history", "b", "a"];

fn same_shape(doc: &Value, real: &Value, at: &str, errs: &mut Vec<String>) {
    match (doc, real) {
        (Value::Object(d), Value::Object(r)) => {
            let (dk, rk): (Vec<&String>, Vec<&String>) = (d.keys().collect(), r.keys().collect());
            if dk != rk {
                errs.push(format!("{at}: documented {dk:?}, printed {rk:?}"));
            }
            for (k, v) in d {
                if let Some(rv) = r.get(k).filter(|_| !FREE.contains(&k.as_str())) {
                    same_shape(v, rv, &format!("{at}.{k}"), errs);
                }
            }
        }
        (Value::Array(d), Value::Array(r)) => {
            if let (Some(x), Some(y)) = (d.first(), r.first()) {
                same_shape(x, y, &format!("{at}[0]"), errs);
            }
        }
        // null stands for "absent here" (no manifest digest, no Entrypoint): either side may be.
        (Value::Null, _) | (_, Value::Null) => {}
        (d, r) if std::mem::discriminant(d) != std::mem::discriminant(r) => errs.push(format!("{at}: documented {d}, printed {r}")),
        _ => {}
    }
}

fn json_of(args: &[&str]) -> Value {
    let o = run_ok(imgslim().arg("-q").args(args));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&o.stdout)))
}

#[test]
fn json_outputs_match_the_readme_examples() {
    let ex = examples();
    let t = tempfile::tempdir().unwrap();
    let bb = shared_images().join("busybox-1.38.0-musl.oci");
    let bb = bb.to_str().unwrap();
    let (sq, sl) = (t.path().join("sq"), t.path().join("slim"));
    let mut real = BTreeMap::new();
    real.insert("inspect", json_of(&["inspect", bb, "--json"]));
    real.insert("squash", json_of(&["squash", bb, "-o", sq.to_str().unwrap(), "--json"]));
    real.insert("slim", json_of(&["slim", bb, "-o", sl.to_str().unwrap(), "--drop", "/bin/vi", "--json"]));
    real.insert("diff", json_of(&["diff", bb, sl.to_str().unwrap(), "--json"]));
    if must_be_root() && have_tool("runc") {
        real.insert("verify", json_of(&["verify", bb, sl.to_str().unwrap(), "--exec", "echo hi", "--json"]));
    }
    let mut errs = Vec::new();
    for (name, v) in &real {
        assert_eq!(v["schema"], 1, "{name}");
        same_shape(&ex[*name], v, name, &mut errs);
    }
    assert!(errs.is_empty(), "{}", errs.join("\n"));
    // The inspect example's wasted row is the shape of a real one (busybox has none).
    let layered = t.path().join("layered");
    let first: &[u8] = b"root:x:0:0::/root:/bin/sh\n";
    let l1 = layer(&[E::Dir("etc/", 0o755), E::File("etc/passwd", 0o644, first)]);
    let l2 = layer(&[E::Dir("etc/", 0o755), E::File("etc/passwd", 0o644, b"root:x:0:0::/:/bin/sh\n")]);
    oci_layout(&layered, &[l1, l2], serde_json::json!({"Cmd": ["/bin/sh"]}));
    let v = json_of(&["inspect", layered.to_str().unwrap(), "--json"]);
    assert_eq!(v["wasted"][0]["path"], "/etc/passwd", "{v}");
    assert_eq!(v["wasted"][0]["bytes"], first.len());
    assert_eq!((v["wasted"][0]["layer"].as_u64(), v["wasted"][0]["hidden_by"].as_u64()), (Some(0), Some(1)));
    same_shape(&ex["inspect"]["wasted"], &v["wasted"], "inspect.wasted", &mut errs);
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

#[test]
fn json_and_stdout_outputs_conflict() {
    let bb = shared_images().join("busybox-1.38.0-musl.oci");
    for args in [vec!["slim", "-o", "-", "--json"], vec!["slim", "--dry-run", "--report", "-", "--json"], vec!["squash", "-o", "-", "--json"]] {
        let o = run(imgslim().arg(args[0]).arg(&bb).args(&args[1..]));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(o.stdout.is_empty());
    }
}
