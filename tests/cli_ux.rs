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
