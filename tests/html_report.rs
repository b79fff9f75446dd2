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

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/busybox-glibc.oci")
}

/// The search data the page carries (path, size, kind, note, class), from a dumped DOM.
fn page_paths(dom: &str) -> Vec<serde_json::Value> {
    let start = dom.find("id=\"paths\">").unwrap() + "id=\"paths\">".len();
    let end = start + dom[start..].find("</script>").unwrap();
    serde_json::from_str::<serde_json::Value>(&dom[start..end]).unwrap().as_array().unwrap().clone()
}

/// The `data-class` of the treemap cell whose hover text starts with `path`.
fn cell_class(dom: &str, path: &str) -> Option<String> {
    let at = dom.find(&format!("<title>{path} ("))?;
    let open = dom[..at].rfind("<rect")?;
    let tag = &dom[open..at];
    let i = tag.find("data-class=\"")? + 12;
    Some(tag[i..i + tag[i..].find('"')?].to_string())
}

/// `diff original slimmed --html`: the page's counts, its per-path classes and its top-level
/// cells agree with an independent listing (umoci unpack of both images and a tree walk), and
/// stdout is what `diff` prints without `--html`.
#[test]
fn diff_html_counts_match_umoci_listings_in_chromium() {
    if !have_tool("chromium") || !have_tool("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let slim = t.path().join("slim");
    run_ok(imgslim().arg("slim").arg(fixture()).arg("-o").arg(&slim));
    let a = umoci_listing(&fixture(), &t.path().join("ua"));
    let b = umoci_listing(&slim, &t.path().join("ub"));
    let removed: BTreeSet<&String> = a.keys().filter(|p| !b.contains_key(*p)).collect();
    let added: BTreeSet<&String> = b.keys().filter(|p| !a.contains_key(*p)).collect();
    let changed: BTreeSet<&String> = a.iter().filter(|(p, v)| b.get(*p).is_some_and(|w| w != *v)).map(|(p, _)| p).collect();
    let same = a.keys().filter(|p| b.contains_key(*p)).count() - changed.len();
    assert!(!removed.is_empty(), "slim removed nothing: the test would prove nothing");

    let page = t.path().join("diff.html");
    let with = run_ok(imgslim().arg("diff").arg(fixture()).arg(&slim).arg("--html").arg(&page));
    let without = run_ok(imgslim().arg("diff").arg(fixture()).arg(&slim));
    assert_eq!(with.stdout, without.stdout, "--html leaves stdout as it was");

    let known = removed.iter().find(|p| a[**p].starts_with("file ")).expect("a removed file");
    let dom = chromium(&t.path().join("chromium"), &["--dump-dom"], &url(&page, &format!("search={known}")));
    let count = |k: &str| attr_of(&dom, "counts", k).unwrap().parse::<usize>().unwrap();
    assert_eq!((count("data-removed"), count("data-added"), count("data-changed"), count("data-same")), (removed.len(), added.len(), changed.len(), same));
    let mut by_class: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for row in page_paths(&dom) {
        by_class.entry(row[4].as_str().unwrap().into()).or_default().insert(row[0].as_str().unwrap().into());
    }
    let set = |s: &BTreeSet<&String>| s.iter().map(|p| p.to_string()).collect::<BTreeSet<String>>();
    assert_eq!(by_class.remove("removed").unwrap_or_default(), set(&removed));
    assert_eq!(by_class.remove("added").unwrap_or_default(), set(&added));
    assert_eq!(by_class.remove("changed").unwrap_or_default(), set(&changed));
    assert_eq!(by_class.remove("same").unwrap_or_default().len(), same);
    assert!(by_class.is_empty(), "no other classes: {by_class:?}");

    // The search finds the removed file, marked removed.
    assert!(dom.contains(&format!("<li data-path=\"{known}\" data-class=\"removed\">")), "{known} found as removed");
    // One cell per top-level name of A and B together.
    let top: BTreeSet<&str> = a.keys().chain(b.keys()).filter_map(|p| p.split('/').nth(1)).collect();
    assert_eq!(attr_of(&dom, "tm-status", "data-cells").unwrap().parse::<usize>().unwrap(), top.len(), "{top:?}");

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("html-report-diff.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&t.path().join("chromium"), &[&format!("--screenshot={}", shot.display())], &url(&page, "dir=/etc&search=etc/"));
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"), "a screenshot at {}", shot.display());
}

/// The `diff --html` page goes through the outputs transaction: no page over an existing file
/// without --force, no page at all when the run fails.
#[test]
fn diff_html_is_atomic() {
    let t = tempfile::tempdir().unwrap();
    let page = t.path().join("d.html");
    std::fs::write(&page, b"old").unwrap();
    let o = run(imgslim().arg("diff").arg(fixture()).arg(fixture()).arg("--html").arg(&page));
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&page).unwrap(), b"old");
    assert!(o.stdout.is_empty(), "nothing compared when an output is refused");
    run_ok(imgslim().arg("diff").arg(fixture()).arg(fixture()).arg("--html").arg(&page).arg("--force"));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("data-added=\"0\" data-removed=\"0\" data-changed=\"0\""), "an image equals itself");
    let o = run(imgslim().arg("diff").arg(fixture()).arg(t.path().join("missing")).arg("--html").arg(t.path().join("new.html")));
    assert_eq!(o.status.code(), Some(1));
    let left: BTreeSet<_> = std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(left, BTreeSet::from(["d.html".to_string()]), "a failed run leaves no page and no staging");
}

/// `inspect --html`: a file overwritten by an upper layer and one whited out are drawn as
/// wasted (the lower copies), the live files as live.
#[test]
fn inspect_html_marks_overwritten_and_deleted_files_as_wasted() {
    if !have_tool("chromium") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let lower = layer(&[E::Dir("app/", 0o755), E::File("app/big", 0o644, &[7; 100_000]), E::File("app/gone", 0o644, &[8; 50_000]), E::File("app/keep", 0o644, &[9; 1000])]);
    let upper = layer(&[E::File("app/big", 0o644, b"small now"), E::File("app/.wh.gone", 0o644, b"")]);
    let img = oci_layout(&t.path().join("img"), &[lower, upper], json!({"Cmd": ["/app/keep"]}));
    let page = t.path().join("inspect.html");
    run_ok(imgslim().arg("inspect").arg(&img).arg("--html").arg(&page));
    let dom = chromium(&t.path().join("chromium"), &["--dump-dom"], &url(&page, "dir=/app&search=app/"));
    assert_eq!(attr_of(&dom, "tm-status", "data-dir").as_deref(), Some("/app"));
    assert_eq!(cell_class(&dom, "/app/big").as_deref(), Some("wasted"), "100 kB hidden under a 9-byte file");
    assert_eq!(cell_class(&dom, "/app/gone").as_deref(), Some("wasted"), "whited out");
    assert_eq!(cell_class(&dom, "/app/keep").as_deref(), Some("live"));
    for (path, class) in [("/app/big", "live"), ("/app/big", "wasted"), ("/app/gone", "wasted"), ("/app/keep", "live")] {
        assert!(dom.contains(&format!("<li data-path=\"{path}\" data-class=\"{class}\">")), "search lists {path} as {class}");
    }
    assert!(!dom.contains("<li data-path=\"/app/gone\" data-class=\"live\">"), "a deleted file is not live");
    assert!(dom.contains("wasted: layer 0's copy, overwritten by layer 1") && dom.contains("wasted: layer 0's copy, deleted by layer 1"));
    assert!(dom.contains("Largest wasted copies"));
}

/// The size bar draws a larger result as growth, never in the saving's colour: checked on
/// every bar of a run that grows (busybox written uncompressed) and one that shrinks.
#[test]
fn growth_is_drawn_as_growth() {
    if !have_tool("chromium") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let mut grew = 0;
    for (name, extra) in [("grow", &["--compression", "none"][..]), ("shrink", &[][..])] {
        let page = t.path().join(format!("{name}.html"));
        let json = t.path().join(format!("{name}.json"));
        run_ok(imgslim().arg("slim").arg(fixture()).arg("-o").arg(t.path().join(name)).args(extra).arg("--html").arg(&page).arg("--report").arg(&json));
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let dom = chromium(&t.path().join("chromium"), &["--dump-dom"], &url(&page, ""));
        for what in ["uncompressed", "compressed"] {
            let (before, after) = (report["size_before"][what].as_u64().unwrap(), report["size_after"][what].as_u64().unwrap());
            let at = dom.find(&format!("data-what=\"{what}\" data-side=\"after\" data-bytes=\"{after}\"")).unwrap_or_else(|| panic!("{name}: no {what} after bar of {after} bytes"));
            let bar = &dom[at..at + dom[at..].find("</div>").unwrap()];
            let pct = format!("{:+.1}%", (after as f64 / before as f64 - 1.0) * 100.0);
            if after > before {
                grew += 1;
                assert!(bar.contains("class=\"fill grown\"") && bar.contains(&format!("({pct}, larger)")), "{name} {what}: {before} -> {after} drawn as {bar}");
            } else if after < before {
                assert!(bar.contains("class=\"fill smaller\"") && bar.contains(&format!("({pct}, smaller)")), "{name} {what}: {bar}");
            }
        }
    }
    assert!(grew > 0, "no run grew: the test would prove nothing");
    let css = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/report/html.css")).unwrap();
    let colour = |class: &str| css.split(&format!(".fill.{class}{{background:")).nth(1).map(|s| s[..s.find('}').unwrap()].to_string());
    assert_ne!(colour("grown"), colour("smaller"), "growth has its own colour");
    assert!(colour("grown").is_some());
}

/// The report of an acceptance image (the small static-go-alpine one, from the shared cache):
/// the browser draws one cell per top-level name of the image (umoci's unpack is the oracle)
/// and the search finds the app's binary, kept.
#[test]
fn acceptance_image_report_renders_in_chromium() {
    if !have_tool("chromium") {
        return;
    }
    let Some(img) = acceptance_image("static-go-alpine") else { return };
    let t = tempfile::tempdir().unwrap();
    let page = t.path().join("go.html");
    run_ok(imgslim().arg("slim").arg(&img).arg("-o").arg(t.path().join("out")).arg("--html").arg(&page));
    let listing = umoci_listing(&img, &t.path().join("u"));
    let top: BTreeSet<&str> = listing.keys().filter_map(|p| p.split('/').nth(1)).collect();
    let dom = chromium(&t.path().join("chromium"), &["--dump-dom"], &url(&page, "search=bin/goapp"));
    assert_eq!(attr_of(&dom, "tm-status", "data-cells").unwrap().parse::<usize>().unwrap(), top.len(), "{top:?}");
    assert_eq!(results(&dom), ["/usr/local/bin/goapp"]);
    assert!(dom.contains("<li data-path=\"/usr/local/bin/goapp\" data-class=\"kept\">"), "the entrypoint is kept");
}

/// Every diff class and the hover of a changed file (content hashes, mode, owner, size A → B),
/// on two crafted images whose differences are known by construction.
#[test]
fn diff_html_says_what_changed() {
    let t = tempfile::tempdir().unwrap();
    let img = |name: &str, content: &[u8], mode: u32, uid: u64, extra: &str| {
        let l = layer(&[E::Dir("etc/", 0o755), E::FileFull("etc/conf", mode, uid, uid, 1, content), E::File(extra, 0o644, b"x"), E::File("etc/same", 0o644, b"s")]);
        oci_layout(&t.path().join(name), &[l], json!({"Cmd": [format!("/bin/{name}")]}))
    };
    let a = img("a", b"version one", 0o644, 0, "etc/gone");
    let b = img("b", b"v2", 0o600, 1000, "etc/new");
    let page = t.path().join("d.html");
    run_ok(imgslim().arg("diff").arg(&a).arg(&b).arg("--html").arg(&page));
    let html = std::fs::read_to_string(&page).unwrap();
    let (ha, hb) = (sha256_hex(b"version one"), sha256_hex(b"v2"));
    let hover = format!("changed: content sha256 {} -&gt; {}, size 11 B -&gt; 2 B, mode 0644 -&gt; 0600, owner 0:0 -&gt; 1000:1000", &ha[..12], &hb[..12]);
    assert!(html.contains(&hover), "{hover} in the page");
    let classes: BTreeSet<(String, String)> = page_paths(&html).iter().map(|r| (r[0].as_str().unwrap().to_string(), r[4].as_str().unwrap().to_string())).collect();
    for want in [("/etc/conf", "changed"), ("/etc/gone", "removed"), ("/etc/new", "added"), ("/etc/same", "same")] {
        assert!(classes.contains(&(want.0.to_string(), want.1.to_string())), "{want:?} in {classes:?}");
    }
    assert!(html.contains("data-added=\"1\" data-removed=\"1\" data-changed=\"1\""));
    let config = &html[html.find("id=\"config-changes\"").unwrap()..];
    assert!(config.contains("<td class=\"n\">Cmd</td><td class=\"n\">[&quot;/bin/a&quot;]</td><td class=\"n\">[&quot;/bin/b&quot;]</td>"), "the config change is listed");
}
