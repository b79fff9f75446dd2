//! Snapshots (insta) of the human and JSON outputs on the fixture image (busybox musl), so a
//! change of wording or of a field shows in review. Update: `INSTA_UPDATE=always cargo nextest
//! run --test snapshots`, then read the diff of tests/snapshots/*.snap before committing.
mod common;
use common::*;

fn busybox() -> String {
    shared_images().join("busybox-1.38.0-musl.oci").to_str().unwrap().to_string()
}

/// The output with the machine's path to the image replaced.
fn redact(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace(&busybox(), "busybox.oci")
}

#[test]
fn slim_dry_run_summary_and_json() {
    let o = run_ok(imgslim().args(["slim", &busybox(), "--dry-run", "--drop", "/bin/vi", "--json"]));
    insta::assert_snapshot!("slim_dry_run_summary", redact(&o.stderr));
    // Busybox's interactive shell makes 406 roots: the first three keep the snapshot small.
    let mut v: serde_json::Value = serde_json::from_str(&redact(&o.stdout)).unwrap();
    let roots = v["roots"].as_array().unwrap().len();
    v["roots"] = serde_json::Value::Array(v["roots"].as_array().unwrap()[..3].to_vec());
    assert_eq!(roots, 407);
    insta::assert_snapshot!("slim_dry_run_json", serde_json::to_string_pretty(&v).unwrap());
}

#[test]
fn inspect_text_and_json() {
    let o = run_ok(imgslim().args(["inspect", &busybox()]));
    insta::assert_snapshot!("inspect_text", redact(&o.stdout));
    let o = run_ok(imgslim().args(["inspect", &busybox(), "--json"]));
    insta::assert_snapshot!("inspect_json", redact(&o.stdout));
}
