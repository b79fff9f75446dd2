//! `--html`: the page is loaded in a real browser (Debian's chromium, headless). Its script
//! reads the URL fragment (`#dir=…&search=…`), so `--dump-dom` shows the rendered state: the
//! treemap cells the browser laid out, and the search results. A screenshot is kept under
//! target/test-artifacts/.
mod common;
use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

fn busybox() -> PathBuf {
    shared_images().join("busybox-1.38.0-musl.oci")
}

/// Headless chromium on `url` with extra args (`--dump-dom`, `--screenshot=…`); returns stdout.
fn chromium(profile: &Path, args: &[&str], url: &str) -> String {
    let o = run(Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--window-size=1280,1800"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--virtual-time-budget=3000")
        .args(args)
        .arg(url));
    assert!(o.status.success(), "chromium failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The value of `attr` on the element with id `id` in a dumped DOM.
fn attr_of(dom: &str, id: &str, attr: &str) -> Option<String> {
    let start = dom.find(&format!("id=\"{id}\""))?;
    let open = dom[..start].rfind('<')?;
    let tag = &dom[open..open + dom[open..].find('>')?];
    let at = tag.find(&format!(" {attr}=\""))? + attr.len() + 3;
    Some(tag[at..at + tag[at..].find('"')?].to_string())
}

/// What the search box listed (the `data-path` of each result).
fn results(dom: &str) -> Vec<String> {
    dom.split("<li data-path=\"").skip(1).map(|s| s[..s.find('"').unwrap()].to_string()).collect()
}

/// Names directly under `/` in a layer, read with the tar crate (not imgslim's tree).
fn top_level(layer: &[u8]) -> BTreeSet<String> {
    let mut a = tar::Archive::new(layer);
    let mut names = BTreeSet::new();
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if let Some(first) = p.trim_start_matches("./").split('/').find(|s| !s.is_empty()) {
            names.insert(first.to_string());
        }
    }
    names
}

fn url(page: &Path, fragment: &str) -> String {
    format!("file://{}#{fragment}", page.display())
}

#[test]
fn slim_html_renders_the_treemap_and_finds_paths_in_chromium() {
    if !have_tool("chromium") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let page = t.path().join("report.html");
    let json = t.path().join("report.json");
    run_ok(imgslim().arg("slim").arg(busybox()).arg("-o").arg(t.path().join("out")).args(["--drop", "/etc/shadow", "--html"]).arg(&page).arg("--report").arg(&json));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let profile = t.path().join("chromium");

    let expected = top_level(&first_layer(&busybox()));
    let dom = chromium(&profile, &["--dump-dom"], &url(&page, "search=bin/busybox"));
    assert_eq!(attr_of(&dom, "tm-status", "data-dir").as_deref(), Some("/"));
    let cells: usize = attr_of(&dom, "tm-status", "data-cells").unwrap().parse().unwrap();
    assert_eq!(cells, expected.len(), "one drawn cell per entry under / ({expected:?})");
    assert_eq!(results(&dom), ["/bin/busybox"], "the search box finds bin/busybox");
    assert!(dom.contains("kept: root"), "the result says why /bin/busybox is kept");

    // Drill-down: the /etc view, and the dropped file with its rule.
    let dom = chromium(&profile, &["--dump-dom"], &url(&page, "dir=/etc&search=etc/shadow"));
    assert_eq!(attr_of(&dom, "tm-status", "data-dir").as_deref(), Some("/etc"));
    assert_eq!(results(&dom), ["/etc/shadow"]);
    assert!(dom.contains("dropped by --drop /etc/shadow"), "the decision and rule are shown");
    assert!(dom.contains("href=\"#dir=%2Fetc\""), "the breadcrumb links back up to /etc");

    // The numbers are the JSON report's.
    let html = std::fs::read_to_string(&page).unwrap();
    let dropped = report["dropped_bytes"].as_u64().unwrap();
    assert!(dropped > 0);
    let after = report["size_after"]["compressed"].as_u64().unwrap();
    assert!(html.contains(&imgslim_human(after)), "after size {after} shown");
    let kept = report["kept_bytes"].as_u64().unwrap();
    let line = format!("content {} kept, {} dropped", imgslim_human(kept), imgslim_human(dropped));
    assert!(html.contains(&line), "{line} in the page");

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("html-report-busybox.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&profile, &[&format!("--screenshot={}", shot.display())], &url(&page, "dir=/etc&search=etc/"));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot at {}", shot.display());
}

/// The tool's human sizes (1 decimal, SI units), as the summary prints them.
fn imgslim_human(b: u64) -> String {
    let units = ["B", "kB", "MB", "GB"];
    let (mut v, mut u) = (b as f64, 0);
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 { format!("{b} B") } else { format!("{v:.1} {}", units[u]) }
}

#[test]
fn hostile_file_names_stay_text_in_the_browser() {
    if !have_tool("chromium") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let evil_img = "x<img src=x onerror=\"document.title='pwned'\">";
    let evil_script = "y</script><script>document.title='pwned2'</script>";
    let l = layer(&[E::Dir("d/", 0o755), E::File(&format!("d/{evil_img}"), 0o644, b"a"), E::File(evil_script, 0o644, b"bb"), E::File("plain", 0o644, b"c")]);
    let img = oci_layout(&t.path().join("img"), &[l], json!({"Cmd": ["/plain"]}));
    let page = t.path().join("inspect.html");
    run_ok(imgslim().arg("inspect").arg(&img).arg("--html").arg(&page));
    let dom = chromium(&t.path().join("chromium"), &["--dump-dom"], &url(&page, "dir=/d&search=onerror"));
    let title = &dom[dom.find("<title>").unwrap()..dom.find("</title>").unwrap()];
    assert!(!title.contains("pwned"), "a file name ran as script: {title}");
    assert!(!dom.contains("<img") && !dom.contains("<script>document"), "a file name became an element");
    assert!(dom.contains("&lt;script&gt;document.title='pwned2'&lt;/script&gt;"), "the name is in the page, as text");
    assert_eq!(results(&dom).len(), 1, "the hostile name is found as text");
    assert!(dom.contains("onerror=&quot;document.title="), "shown escaped");
    assert_eq!(attr_of(&dom, "tm-status", "data-dir").as_deref(), Some("/d"));
    assert_eq!(attr_of(&dom, "tm-status", "data-cells").as_deref(), Some("1"));
}

#[test]
fn html_is_atomic_and_dry_run_writes_none() {
    let t = tempfile::tempdir().unwrap();
    let page = t.path().join("r.html");
    let o = run_ok(imgslim().arg("slim").arg(busybox()).arg("--dry-run").arg("--html").arg(&page));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--html: not written"));
    // A failing run (an output that exists, no --force) leaves no page.
    let existing = t.path().join("exists");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("f"), b"x").unwrap();
    let o = run(imgslim().arg("slim").arg(busybox()).arg("-o").arg(&existing).arg("--html").arg(&page));
    assert_ne!(o.status.code(), Some(0));
    let left: Vec<_> = std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 1, "nothing but the pre-existing dir: {left:?}");
    // inspect --html refuses to replace a file without --force, and replaces it with it.
    std::fs::write(&page, b"old").unwrap();
    let o = run(imgslim().arg("inspect").arg(busybox()).arg("--html").arg(&page));
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&page).unwrap(), b"old");
    run_ok(imgslim().arg("inspect").arg(busybox()).arg("--html").arg(&page).arg("--force"));
    let first = std::fs::read(&page).unwrap();
    run_ok(imgslim().arg("inspect").arg(busybox()).arg("--html").arg(&page).arg("--force"));
    assert_eq!(first, std::fs::read(&page).unwrap(), "same input, same page");
    let mut s = String::new();
    std::fs::File::open(&page).unwrap().read_to_string(&mut s).unwrap();
    assert!(s.starts_with("<!DOCTYPE html>") && s.contains("sha256:5c3b4478"), "the page names the layer");
}

#[test]
fn multi_platform_slim_writes_one_page_per_platform() {
    let t = tempfile::tempdir().unwrap();
    let img = shared_images().join("busybox-1.35-debian-multiarch.oci");
    run_ok(imgslim().arg("slim").arg(&img).args(["--platform", "all", "-o"]).arg(t.path().join("out")).arg("--html").arg(t.path().join("r.html")));
    for p in ["r.linux-amd64.html", "r.linux-arm64.html"] {
        let s = std::fs::read_to_string(t.path().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert!(s.contains("<svg class=\"tm\" data-dir=\"/\""), "{p} has the treemap");
    }
    assert!(!t.path().join("r.html").exists());
}
