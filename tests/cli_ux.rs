//! The user-facing extras: shell completions and the man page (checked with bash, zsh, fish
//! when present and with man/groff), `diff` against an independent listing, and `inspect --ci`.
mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// Subcommand names as `imgslim --help` lists them (the parser's own view, not the generator's).
fn subcommands_from_help() -> Vec<String> {
    let out = run_ok(imgslim().arg("--help"));
    let text = String::from_utf8(out.stdout).unwrap();
    let section = text.split("Commands:").nth(1).expect("--help lists Commands:");
    let names: Vec<String> = section
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(String::from)
        .collect();
    assert!(names.len() >= 6, "too few subcommands parsed from --help: {names:?}");
    names
}

fn pipe_into(cmd: &mut Command, input: &[u8]) -> std::process::Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn bash_completion_offers_every_subcommand() {
    let script = run_ok(imgslim().args(["completions", "bash"])).stdout;
    if !have_tool("bash") {
        return;
    }
    // Load the script into a real bash and ask it to complete `imgslim <TAB>`.
    let driver = "source /dev/stdin; COMP_WORDS=(imgslim ''); COMP_CWORD=1; COMP_LINE='imgslim '; COMP_POINT=8; \
                  _imgslim imgslim '' imgslim; printf '%s\\n' \"${COMPREPLY[@]}\"";
    let out = pipe_into(Command::new("bash").args(["-c", driver]), &script);
    assert!(out.status.success(), "bash: {}", String::from_utf8_lossy(&out.stderr));
    let offered: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();
    for sub in subcommands_from_help() {
        assert!(offered.contains(&sub), "bash completion does not offer '{sub}': {offered:?}");
    }
    // And a flag of a subcommand: `imgslim inspect --j<TAB>` → --json.
    let driver = "source /dev/stdin; COMP_WORDS=(imgslim inspect --j); COMP_CWORD=2; \
                  _imgslim imgslim --j inspect; printf '%s\\n' \"${COMPREPLY[@]}\"";
    let out = pipe_into(Command::new("bash").args(["-c", driver]), &script);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "--json");
}

#[test]
fn zsh_and_fish_completions_parse() {
    for (shell, check) in [("zsh", vec!["-n"]), ("fish", vec!["--no-execute"])] {
        let script = run_ok(imgslim().args(["completions", shell])).stdout;
        let text = String::from_utf8(script.clone()).unwrap();
        for sub in subcommands_from_help() {
            assert!(text.contains(&sub), "{shell} completion lacks '{sub}'");
        }
        if have_tool(shell) {
            let out = pipe_into(Command::new(shell).args(&check), &script);
            assert!(out.status.success(), "{shell} rejects its completion: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[test]
fn man_page_renders_without_warnings() {
    let roff = run_ok(imgslim().arg("man")).stdout;
    if !have_tool("man") {
        return;
    }
    // man -l runs preconv + groff; --warnings makes groff report malformed roff on stderr.
    let out = pipe_into(Command::new("man").args(["--warnings", "-l", "-"]).env("MANWIDTH", "100").env("MAN_KEEP_FORMATTING", ""), &roff);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "man -l failed or warned: {stderr}");
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains("NAME") && page.contains("SYNOPSIS"), "not a man page:\n{page}");
    for sub in subcommands_from_help() {
        let heading = format!("IMGSLIM {}", sub.to_uppercase());
        assert!(page.contains(&heading), "man page has no section {heading}");
    }
    // Every long flag of `slim --help` is documented on the page.
    let help = String::from_utf8(run_ok(imgslim().args(["slim", "--help"])).stdout).unwrap();
    for flag in help.split_whitespace().filter(|w| w.starts_with("--")).map(|w| w.trim_end_matches([',', '.'])) {
        let flag = flag.split(['=', '<', '[']).next().unwrap();
        assert!(page.contains(flag), "man page lacks {flag}");
    }
}

fn paths(v: &serde_json::Value) -> std::collections::BTreeSet<String> {
    v.as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap().to_string()).collect()
}

#[test]
fn diff_of_original_and_slimmed_matches_umoci_listings() {
    if !have_tool("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/busybox-glibc.oci");
    let slim = t.path().join("slim");
    run_ok(imgslim().arg("slim").arg(&fixture).arg("-o").arg(&slim));
    let a = umoci_listing(&fixture, &t.path().join("ua"));
    let b = umoci_listing(&slim, &t.path().join("ub"));
    let out = run_ok(imgslim().arg("diff").arg(&fixture).arg(&slim).arg("--json"));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["schema"], 1);
    let removed: std::collections::BTreeSet<String> = a.keys().filter(|p| !b.contains_key(*p)).cloned().collect();
    let added: std::collections::BTreeSet<String> = b.keys().filter(|p| !a.contains_key(*p)).cloned().collect();
    let changed: std::collections::BTreeSet<String> = a.iter().filter(|(p, v)| b.get(*p).is_some_and(|w| w != *v)).map(|(p, _)| p.clone()).collect();
    assert!(!removed.is_empty(), "slim removed nothing: the test would prove nothing");
    assert_eq!(paths(&d["removed"]), removed);
    assert_eq!(paths(&d["added"]), added);
    assert_eq!(paths(&d["changed"]), changed);
    let common = a.keys().filter(|p| b.contains_key(*p)).count() as u64;
    assert_eq!(d["counts"]["unchanged"].as_u64().unwrap() + changed.len() as u64, common);
    // The text form lists the same removed paths, one `- PATH` line each.
    let text = String::from_utf8(run_ok(imgslim().arg("diff").arg(&fixture).arg(&slim)).stdout).unwrap();
    let text_removed: std::collections::BTreeSet<String> =
        text.lines().filter_map(|l| l.strip_prefix("- ")).map(|l| l.split("  ").next().unwrap().to_string()).collect();
    assert_eq!(text_removed, removed);
}

/// /etc/conf with `content`, /etc/mode with `mode`, /etc/owner owned by `uid` (gid 100 unless
/// root), /etc/link -> `target`, and one more file `extra`.
fn etc_image(dir: &std::path::Path, v: (&[u8], u32, u64, &str, &str), cmd: &str) -> std::path::PathBuf {
    let (content, mode, uid, target, extra) = v;
    let gid = if uid == 0 { 0 } else { 100 };
    let l = layer(&[
        E::Dir("etc/", 0o755),
        E::FileFull("etc/conf", 0o644, 0, 0, 1, content),
        E::FileFull("etc/mode", mode, 0, 0, 1, b"same"),
        E::FileFull("etc/owner", 0o644, uid, gid, 1, b"same"),
        E::Symlink("etc/link", target),
        E::File(extra, 0o644, b"x"),
    ]);
    oci_layout(dir, &[l], serde_json::json!({"Cmd": [cmd], "Env": ["A=1"]}))
}

#[test]
fn diff_names_each_kind_of_change() {
    if !have_tool("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    // B differs from A in exactly one attribute per path, plus one path gone and one new.
    let a = etc_image(&t.path().join("a"), (b"v1", 0o644, 0, "conf", "etc/gone"), "/bin/a");
    let b = etc_image(&t.path().join("b"), (b"v2", 0o600, 1000, "mode", "etc/new"), "/bin/b");
    let d: serde_json::Value = serde_json::from_slice(&run_ok(imgslim().arg("diff").arg(&a).arg(&b).arg("--json")).stdout).unwrap();
    let changes: std::collections::BTreeMap<String, Vec<String>> = d["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap().to_string(), c["changes"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()))
        .collect();
    let want = [("/etc/conf", "content"), ("/etc/link", "target"), ("/etc/mode", "mode"), ("/etc/owner", "owner")];
    assert_eq!(changes, want.iter().map(|(p, c)| (p.to_string(), vec![c.to_string()])).collect());
    assert_eq!(paths(&d["removed"]), ["/etc/gone".to_string()].into());
    assert_eq!(paths(&d["added"]), ["/etc/new".to_string()].into());
    assert_eq!(d["config"], serde_json::json!([{"key": "Cmd", "a": ["/bin/a"], "b": ["/bin/b"]}]));
    // And umoci agrees on the owner and mode imgslim reports for B.
    let ub = umoci_listing(&b, &t.path().join("ub"));
    assert!(ub["/etc/owner"].contains("uid=1000 gid=100") && ub["/etc/mode"].contains("mode=600"), "{ub:?}");
}

/// Three layers with known waste: /etc/a grows from 100 to 1000 bytes (the 100-byte copy is
/// wasted), /etc/b (500 bytes) is whited out, /etc/c (400 bytes) stays. So, by hand:
/// total 2000 bytes, wasted 600, efficiency 0.7, user wasted 600/1000 = 0.6. Dive's formula:
/// efficiency (100+0+400)/2000 = 0.25, wasted 1100+500 = 1600, user wasted 1.6.
fn wasteful_image(dir: &std::path::Path) -> std::path::PathBuf {
    let l1 = layer(&[E::Dir("etc/", 0o755), E::File("etc/a", 0o644, &[1; 100]), E::File("etc/b", 0o644, &[2; 500]), E::File("etc/c", 0o644, &[3; 400])]);
    let l2 = layer(&[E::File("etc/a", 0o644, &[4; 1000])]);
    let l3 = layer(&[E::File("etc/.wh.b", 0o644, b"")]);
    oci_layout(dir, &[l1, l2, l3], serde_json::json!({"Cmd": ["/bin/true"]}))
}

fn ci_run(image: &std::path::Path, cwd: &std::path::Path, args: &[&str]) -> (i32, Vec<String>) {
    let out = run(imgslim().current_dir(cwd).arg("inspect").arg(image).arg("--ci").args(args));
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect())
}

#[test]
fn ci_rules_pass_and_fail_on_a_crafted_image() {
    let t = tempfile::tempdir().unwrap();
    let img = wasteful_image(&t.path().join("img"));
    let strict = ["--lowest-efficiency", "0.65", "--highest-wasted-bytes", "600", "--highest-user-wasted-percent", "0.5"];
    let (code, lines) = ci_run(&img, t.path(), &strict);
    assert_eq!(code, 1, "{lines:?}");
    assert_eq!(
        lines,
        [
            "PASS lowest-efficiency: efficiency 0.7000 (threshold 0.65; dive would say 0.2500)",
            "PASS highest-wasted-bytes: wasted 600 B (threshold 600 B; dive would say 1.6 kB)",
            "FAIL highest-user-wasted-percent: user wasted 0.6000 (threshold 0.5; dive would say 1.6000)",
        ]
    );
    let (code, lines) = ci_run(&img, t.path(), &["--lowest-efficiency", "0.7", "--highest-wasted-bytes", "1kB", "--highest-user-wasted-percent", "0.6"]);
    assert_eq!(code, 0, "{lines:?}");
    assert!(lines.iter().all(|l| l.starts_with("PASS")), "{lines:?}");
    let (code, lines) = ci_run(&img, t.path(), &["--lowest-efficiency", "0.71"]);
    assert_eq!(code, 1, "{lines:?}");
    assert!(lines[0].starts_with("FAIL lowest-efficiency"), "{lines:?}");
    // A one-layer image wastes nothing and passes the defaults.
    let clean = oci_layout(&t.path().join("clean"), &[layer(&[E::File("a", 0o644, b"x")])], serde_json::json!({}));
    let (code, lines) = ci_run(&clean, t.path(), &[]);
    assert_eq!(code, 0, "{lines:?}");
    assert!(lines[2].ends_with("user wasted 0.0000 (threshold 0.1; dive would say NaN: one layer)"), "{lines:?}");
}

#[test]
fn ci_rules_come_from_imgslim_or_dive_files() {
    let t = tempfile::tempdir().unwrap();
    let img = wasteful_image(&t.path().join("img"));
    let dive_dir = t.path().join("dive");
    std::fs::create_dir(&dive_dir).unwrap();
    std::fs::write(dive_dir.join(".dive-ci"), "rules:\n  lowestEfficiency: 0.5\n  highestWastedBytes: 1MB\n  highestUserWastedPercent: disabled\n").unwrap();
    let (code, lines) = ci_run(&img, &dive_dir, &[]);
    assert_eq!(code, 0, "{lines:?}");
    assert!(lines[2].starts_with("SKIP highest-user-wasted-percent"), "{lines:?}");
    // .imgslim-ci.toml wins over .dive-ci; a flag wins over both.
    std::fs::write(dive_dir.join(".imgslim-ci.toml"), "[rules]\nlowest-efficiency = 0.8\nhighest-user-wasted-percent = \"off\"\n").unwrap();
    let (code, lines) = ci_run(&img, &dive_dir, &[]);
    assert_eq!(code, 1, "{lines:?}");
    assert!(lines[0].starts_with("FAIL lowest-efficiency: efficiency 0.7000 (threshold 0.8"), "{lines:?}");
    assert_eq!(ci_run(&img, &dive_dir, &["--lowest-efficiency", "0.6"]).0, 0);
    // A bad value is a usage error (2), naming the rule.
    let out = run(imgslim().current_dir(&dive_dir).arg("inspect").arg(&img).args(["--ci", "--highest-wasted-bytes", "lots"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("highest-wasted-bytes"));
}
