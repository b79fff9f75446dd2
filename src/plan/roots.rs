//! What the image runs: Entrypoint + Cmd, the Healthcheck, interpreters of `#!` scripts and,
//! best effort, the commands a shell script runs. Every root carries a label that `--explain`
//! prints ("Cmd", "command 'sed' in /usr/local/bin/tool.sh (Cmd)", …).
use super::risk::{line_of, Risk};
use super::shell::{self, At, Event, SHELLS};
use super::treefs::TreeFs;
use crate::elf::{Node, RootFs};
use std::collections::BTreeSet;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// Path as found (may be a symlink, e.g. /usr/bin/python3).
    pub path: String,
    pub label: String,
}

/// Files a command line names: executables to trace and plain files (scripts, jars) to keep.
#[derive(Debug, Default)]
pub struct Found {
    pub roots: Vec<Root>,
    /// Argument files (e.g. `python3 /app/main.py`), kept with their label.
    pub files: Vec<Root>,
    /// Things the static scan could not be sure about (said in the summary).
    pub uncertain: BTreeSet<String>,
    /// What may break the image: unresolved commands, missing programs.
    pub risks: BTreeSet<Risk>,
}

pub struct Resolver<'a> {
    pub fs: &'a TreeFs<'a>,
    pub path_dirs: Vec<String>,
    pub workdir: String,
    /// The Cmd that an Entrypoint script runs with `exec "$@"` (taken once it is resolved).
    pub cmd: Vec<String>,
    /// The image's Env: values the scripts start with.
    pub env: Vec<(String, String)>,
    seen_scripts: BTreeSet<String>,
}

/// Shell builtins and keywords: never looked up on PATH.
const BUILTINS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac", "in", "function", "{", "}",
    "!", "[[", "]]", "select", "time", "cd", "echo", "export", "set", "unset", "read", "local", "return", "exit", "shift",
    "trap", "wait", "true", "false", ":", "printf", "test", "[", "umask", "ulimit", "alias", "unalias", "break", "continue",
    "type", "getopts", "hash", "pwd", "readonly", "declare", "typeset", "let", "shopt", "jobs", "fg", "bg", "kill", "command",
];
/// Words that run the next word as the command.
const PREFIXES: &[&str] = &["exec", "time", "--"];
/// Programs that run the next command (privilege drops, init shims): the wrapper and the
/// wrapped command are both roots.
const WRAPPERS: &[&str] = &["nohup", "nice", "env", "chroot", "setsid", "stdbuf", "timeout", "su-exec", "gosu", "tini", "dumb-init", "setpriv", "runuser"];
/// Wrappers whose first positional argument is not the command (the user, the new root).
const TAKES_ONE_ARG: &[&str] = &["gosu", "su-exec", "chroot"];

impl<'a> Resolver<'a> {
    pub fn new(fs: &'a TreeFs<'a>, path_var: Option<&str>, workdir: Option<&str>) -> Self {
        let path_dirs = path_var.unwrap_or(DEFAULT_PATH).split(':').filter(|d| d.starts_with('/')).map(str::to_string).collect();
        let workdir = workdir.filter(|w| w.starts_with('/')).unwrap_or("/").to_string();
        Resolver { fs, path_dirs, workdir, cmd: Vec::new(), env: Vec::new(), seen_scripts: BTreeSet::new() }
    }

    fn is_exec_file(&self, p: &str) -> bool {
        match self.fs.resolve(p) {
            Some(r) if r.node == Node::File => self.fs.mode(&r.path).map(|m| m & 0o111 != 0).unwrap_or(false),
            _ => false,
        }
    }

    /// Resolve a command name the way execvp does.
    pub fn which(&self, name: &str) -> Option<String> {
        if name.contains('/') {
            let p = self.absolute(name);
            return self.is_exec_file(&p).then_some(p);
        }
        self.path_dirs.iter().map(|d| format!("{}/{name}", d.trim_end_matches('/'))).find(|p| self.is_exec_file(p))
    }

    fn absolute(&self, p: &str) -> String {
        if p.starts_with('/') {
            p.to_string()
        } else {
            format!("{}/{p}", self.workdir.trim_end_matches('/'))
        }
    }

    /// An exec-form argv: argv[0] is looked up on PATH; `sh -c STRING` is parsed; arguments
    /// naming files in the image are kept (and scanned when they are scripts).
    pub fn argv(&mut self, argv: &[String], label: &str, out: &mut Found) {
        let Some(first) = argv.first() else { return };
        let Some(exe) = self.which(first) else {
            let what = format!("'{first}' is not an executable in the image (PATH {}): the image would not start", self.path_dirs.join(":"));
            out.risks.insert(Risk::new("broken-root", label, what, "--entrypoint/--cmd naming a program in the image, or --keep it"));
            return;
        };
        self.add_exec(&exe, label, out);
        let base = first.rsplit('/').next().unwrap_or(first);
        let is_shell = SHELLS.contains(&base);
        // A bare shell (`Cmd ["sh"]`) is an interactive environment: every command on PATH is
        // part of what the image offers.
        if is_shell && argv[1..].iter().all(|a| a.starts_with('-') && !a.contains('c')) {
            self.all_on_path(&format!("command on PATH ({label} is an interactive shell)"), out);
            return;
        }
        let mut i = 1;
        while i < argv.len() {
            let a = &argv[i];
            if is_shell && (a == "-c" || (a.starts_with('-') && a.contains('c') && !a.starts_with("--"))) {
                if let Some(script) = argv.get(i + 1) {
                    self.shell_text(script, None, &format!("{label} shell string"), out);
                }
                return;
            }
            if !a.starts_with('-') && a.len() < 4096 {
                let p = self.absolute(a);
                if let Some(r) = self.fs.resolve(&p) {
                    if r.node == Node::File {
                        out.files.push(Root { path: p.clone(), label: format!("argument of {label}") });
                        if is_shell {
                            self.script_file(&p, label, out);
                        } else {
                            self.maybe_script(&p, label, out);
                        }
                    } else if r.node == Node::Dir {
                        out.files.push(Root { path: p, label: format!("argument of {label}") });
                    }
                }
            }
            i += 1;
        }
    }

    /// Conservative resolution of `"$X/name"`: every executable file named `name` is a root.
    fn by_last_component(&mut self, w: &str, label: &str, out: &mut Found) -> bool {
        let Some(name) = literal_tail(w) else { return false };
        let tree = self.fs.tree;
        let hits: Vec<String> = tree
            .walk()
            .into_iter()
            .map(|(p, _)| format!("/{}", String::from_utf8_lossy(&p)))
            .filter(|p| p.rsplit('/').next() == Some(name) && self.is_exec_file(p))
            .collect();
        for p in &hits {
            self.add_exec(p, &format!("every executable named '{name}' ('{w}' in {label} is built at run time)"), out);
        }
        !hits.is_empty()
    }

    /// Whether the last component of `p` is itself a symlink.
    fn is_symlink(&self, p: &str) -> bool {
        self.fs.location(p).is_some_and(|(loc, _)| matches!(self.fs.lstat(&loc), Some(Node::Symlink(_))))
    }

    fn all_on_path(&mut self, label: &str, out: &mut Found) {
        for d in self.path_dirs.clone() {
            for name in self.fs.read_dir(&d) {
                let p = format!("{}/{name}", d.trim_end_matches('/'));
                if self.is_exec_file(&p) {
                    out.roots.push(Root { path: p, label: label.to_string() });
                }
            }
        }
    }

    fn add_exec(&mut self, exe: &str, label: &str, out: &mut Found) {
        out.roots.push(Root { path: exe.to_string(), label: label.to_string() });
        self.maybe_script(exe, label, out);
    }

    /// If `p` is a `#!` script: its interpreter is a root, and a shell script is scanned.
    fn maybe_script(&mut self, p: &str, label: &str, out: &mut Found) {
        let Some(head) = self.fs.read(p).map(|b| b[..b.len().min(512)].to_vec()) else { return };
        if !head.starts_with(b"#!") {
            return;
        }
        let line = String::from_utf8_lossy(head.split(|b| *b == b'\n').next().unwrap_or(&[]))[2..].trim().to_string();
        let mut parts = line.split_whitespace();
        let Some(interp) = parts.next() else { return };
        let ilabel = format!("interpreter of {p} ({label})");
        let mut shell_base = interp.rsplit('/').next().unwrap_or(interp).to_string();
        if self.is_exec_file(interp) {
            out.roots.push(Root { path: interp.to_string(), label: ilabel.clone() });
        } else {
            out.risks.insert(Risk::new("broken-root", format!("{p}:1"), format!("interpreter '{interp}' is missing from the image ({label})"), "--keep the interpreter, or fix the #! line"));
        }
        if shell_base == "env" {
            if let Some(name) = parts.find(|w| !w.starts_with('-') && !w.contains('=')) {
                match self.which(name) {
                    Some(x) => out.roots.push(Root { path: x, label: format!("'{name}' via /usr/bin/env, {ilabel}") }),
                    None => {
                        out.uncertain.insert(format!("{p}: '#!/usr/bin/env {name}' but '{name}' is not on PATH"));
                    }
                }
                shell_base = name.to_string();
            }
        }
        if SHELLS.contains(&shell_base.as_str()) {
            self.script_file(p, label, out);
        }
    }

    fn script_file(&mut self, p: &str, label: &str, out: &mut Found) {
        if !self.seen_scripts.insert(p.to_string()) {
            return;
        }
        if let Some(text) = self.fs.read(p) {
            if text.len() < 4 << 20 {
                let text = String::from_utf8_lossy(&text).into_owned();
                self.shell_text(&text, Some(p), &format!("{p} ({label})"), out);
            }
        }
    }

    /// Shell code, walked by `shell` (brush-parser's syntax tree with the values known
    /// statically); text brush-parser rejects falls back to a word scan.
    pub fn shell_text(&mut self, text: &str, path: Option<&str>, label: &str, out: &mut Found) {
        let fs = self.fs;
        let workdir = self.workdir.clone();
        let read = move |p: &str| {
            let abs = if p.starts_with('/') { p.to_string() } else { format!("{}/{p}", workdir.trim_end_matches('/')) };
            let r = fs.resolve(&abs).filter(|r| r.node == Node::File)?;
            let bytes = fs.read(&r.path).filter(|b| b.len() < 4 << 20)?;
            Some((abs, String::from_utf8_lossy(&bytes).into_owned()))
        };
        match shell::run_script(text, path, label, &self.env, &read) {
            Some(events) => {
                for at in events {
                    self.shell_event(at, out);
                }
            }
            None => {
                out.uncertain.insert(format!("{label}: the shell parser rejects this script; its commands were found by a word scan"));
                self.scan_text(text, label, out);
            }
        }
    }

    fn shell_event(&mut self, at: At, out: &mut Found) {
        let (label, line) = (at.label.as_str(), format!("{}, line {}", at.label, at.line));
        match at.event {
            Event::Run(w) => self.run_word(&w, label, &line, out),
            Event::RunCmd => {
                // `exec "$@"` in an Entrypoint script runs the Cmd.
                let cmd = std::mem::take(&mut self.cmd);
                self.argv(&cmd, &format!("Cmd, run by \"$@\" in {label}"), out);
            }
            Event::Dynamic(w) => self.dynamic_word(&w.replace('"', ""), label, &line, out),
            Event::Source(p) => {
                self.seen_scripts.insert(p.clone());
                out.files.push(Root { path: p, label: format!("sourced by {label}") });
            }
            Event::SourceMissing(f) => {
                out.uncertain.insert(format!("{line}: sources '{f}', which is not a file in the image"));
            }
            Event::PathArg(p) => self.path_arg(p, label, out),
        }
    }

    fn run_word(&mut self, w: &str, label: &str, line: &str, out: &mut Found) {
        if BUILTINS.contains(&w) || w.is_empty() {
            return;
        }
        if w == "eval" {
            out.risks.insert(Risk::new("unresolved-command", line, "uses 'eval'; commands it builds cannot be seen statically", "--keep GLOB of what it runs, or --trace"));
            return;
        }
        if let Some(exe) = self.which(w) {
            self.add_exec(&exe, &format!("command '{w}' in {label}"), out);
        } else if w.contains('/') {
            self.dynamic_word(w, label, line, out);
        } else if w.chars().all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c)) {
            out.uncertain.insert(format!("{label}: command '{w}' not found on PATH (a shell function or missing tool?)"));
        }
    }

    /// A command word not known statically (or a path not in the image).
    fn dynamic_word(&mut self, w: &str, label: &str, line: &str, out: &mut Found) {
        if self.by_last_component(w, label, out) {
            let name = literal_tail(w).unwrap_or_default();
            out.uncertain.insert(format!("{line}: '{w}' is built at run time: every executable named '{name}' in the image is kept"));
        } else {
            out.risks.insert(Risk::new("unresolved-command", line, format!("runs a command built at run time ('{w}')"), "--keep GLOB of what it runs, or --trace"));
        }
    }

    fn path_arg(&mut self, p: String, label: &str, out: &mut Found) {
        if let Some(r) = self.fs.resolve(&p) {
            // A symlink named by the script is kept as a symlink (even to /etc).
            let is_link = self.is_symlink(&p);
            if r.node == Node::File || (r.node == Node::Dir && (is_link || !is_system_dir(&r.path))) {
                out.files.push(Root { path: p, label: format!("path named in {label}") });
            }
        }
    }

    /// The fallback for text the parser rejects: words in command position resolved on PATH.
    fn scan_text(&mut self, text: &str, label: &str, out: &mut Found) {
        let functions = defined_functions(text);
        for cmd in command_words(text) {
            match cmd {
                Word::Plain(w) if functions.contains(&w) => {}
                Word::Plain(w) => self.run_word(&w, label, &at_line(label, text, &w), out),
                Word::Source(f) => {
                    let p = self.absolute(&f);
                    if self.fs.is_file(&p) {
                        out.files.push(Root { path: p.clone(), label: format!("sourced by {label}") });
                        self.script_file(&p, label, out);
                    } else {
                        out.uncertain.insert(format!("{label}: sources '{f}', which is not a file in the image"));
                    }
                }
                Word::Dynamic(w) if is_all_args(&w) => self.shell_event(At { label: label.into(), line: 0, event: Event::RunCmd }, out),
                Word::Dynamic(w) => self.dynamic_word(&w, label, &at_line(label, text, &w), out),
                Word::PathArg(p) => self.path_arg(p, label, out),
            }
        }
    }
}

/// The literal last component of a command word built at run time (`"$BIN/initdb"`).
fn literal_tail(w: &str) -> Option<&str> {
    let w = w.trim_matches('"');
    let (_, tail) = w.rsplit_once('/')?;
    let ok = !tail.is_empty() && tail.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    ok.then_some(tail)
}

/// Names of the shell functions a script defines (`name() {` or `function name`).
fn defined_functions(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in text.lines().map(str::trim_start) {
        let (keyword, l) = match l.strip_prefix("function ") {
            Some(r) => (true, r.trim_start()),
            None => (false, l),
        };
        let name: String = l.chars().take_while(|c| c.is_ascii_alphanumeric() || "_-.:".contains(*c)).collect();
        let rest = l[name.len()..].trim_start();
        if !name.is_empty() && (keyword || rest.starts_with("()")) {
            out.insert(name);
        }
    }
    out
}

fn is_all_args(w: &str) -> bool {
    matches!(w.trim_matches('"'), "$@" | "${@}" | "$*" | "${*}")
}

/// `label, line N` when the text is a script with the word on a line.
fn at_line(label: &str, text: &str, word: &str) -> String {
    match line_of(text, word) {
        Some(n) => format!("{label}, line {n}"),
        None => label.to_string(),
    }
}

/// Directories a script may name (`cd /usr`, `ls /etc`) without needing all they hold.
fn is_system_dir(p: &str) -> bool {
    const SYSTEM: &[&str] = &[
        "/", "/bin", "/sbin", "/lib", "/lib64", "/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/share",
        "/usr/local", "/usr/local/bin", "/usr/local/lib", "/usr/local/share", "/etc", "/var", "/var/lib", "/var/cache",
        "/var/log", "/opt", "/srv", "/home", "/root", "/tmp", "/var/tmp", "/run", "/proc", "/sys", "/dev", "/mnt", "/media",
    ];
    SYSTEM.contains(&p.trim_end_matches('/')) || p.starts_with("/usr/lib/x86_64-linux-gnu") && p.matches('/').count() <= 4
}

#[derive(Debug, PartialEq, Eq)]
pub enum Word {
    Plain(String),
    Source(String),
    Dynamic(String),
    /// An absolute path in argument position (`cat /opt/app/config`): a file the script uses.
    PathArg(String),
}

/// Split shell text into words, returning those in command position. Quotes and escapes are
/// honoured; `$(…)` and backticks are scanned as nested code; heredoc bodies are skipped.
pub fn command_words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let lines = text.lines();
    let mut pending_heredocs: Vec<String> = Vec::new();
    let mut buf = String::new();
    for line in lines {
        if let Some(end) = pending_heredocs.first().cloned() {
            if line.trim() == end {
                pending_heredocs.remove(0);
            }
            continue;
        }
        let l = line.trim_start();
        if l.starts_with('#') {
            continue;
        }
        // Heredoc markers start skipping from the next line.
        if let Some(pos) = l.find("<<") {
            let rest = l[pos + 2..].trim_start_matches('-').trim_start();
            let marker: String = rest.chars().filter(|c| !"'\"".contains(*c)).take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !marker.is_empty() {
                pending_heredocs.push(marker);
            }
        }
        buf.push_str(line);
        buf.push('\n');
    }
    scan(&buf, &mut out);
    out
}

fn scan(text: &str, out: &mut Vec<Word>) {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut at_cmd = true;
    let mut expect_source = false;
    // Positional arguments of a wrapper still to skip (`gosu USER`, `runuser -u USER`).
    let mut skip_args = 0usize;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '\n' | ';' | '&' | '|' | '(' | ')' => {
                at_cmd = true;
                skip_args = 0;
                i += 1;
            }
            '#' if at_cmd => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            _ => {
                let (word, dynamic, next, subs) = read_word(&chars, i);
                for s in subs {
                    scan(&s, out);
                }
                i = next;
                if expect_source {
                    expect_source = false;
                    if !dynamic {
                        out.push(Word::Source(word));
                    }
                    at_cmd = false;
                    continue;
                }
                if !at_cmd {
                    if word.starts_with('/') && !dynamic && word.len() > 1 {
                        out.push(Word::PathArg(word));
                    }
                    continue;
                }
                if is_assignment(&word) {
                    continue;
                }
                if word == "." || word == "source" {
                    expect_source = true;
                    at_cmd = false;
                    continue;
                }
                if skip_args > 0 && !word.starts_with('-') {
                    skip_args -= 1;
                    continue;
                }
                if WRAPPERS.contains(&word.as_str()) {
                    skip_args = usize::from(TAKES_ONE_ARG.contains(&word.as_str()));
                    out.push(Word::Plain(word));
                    continue;
                }
                if word == "-u" || word == "--user" {
                    skip_args = 1;
                    continue;
                }
                // Wrappers run the next word; their options and arguments (`env -i`, `timeout 10`)
                // are not commands either.
                if PREFIXES.contains(&word.as_str()) || word.starts_with('-') || word.starts_with(|c: char| c.is_ascii_digit()) {
                    continue;
                }
                if ["then", "do", "else", "elif", "if", "while", "until", "!", "{", "}", "time", "fi", "done", "esac"].contains(&word.as_str()) {
                    continue;
                }
                if word.starts_with('<') || word.starts_with('>') || word.chars().next().is_some_and(|c| c.is_ascii_digit()) && word.contains('>') {
                    continue;
                }
                if dynamic {
                    out.push(Word::Dynamic(word));
                } else {
                    out.push(Word::Plain(word));
                }
                at_cmd = false;
            }
        }
    }
}

fn is_assignment(w: &str) -> bool {
    match w.find('=') {
        Some(p) if p > 0 => w[..p].chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        _ => false,
    }
}

/// Read one word from `i`: (text with quotes removed, contains an expansion, next index,
/// nested command substitutions).
fn read_word(chars: &[char], mut i: usize) -> (String, bool, usize, Vec<String>) {
    let mut w = String::new();
    let mut dynamic = false;
    let mut subs = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' => break,
            '\\' => {
                if let Some(n) = chars.get(i + 1) {
                    w.push(*n);
                }
                i += 2;
            }
            '\'' => {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    w.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        w.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    if chars[i] == '$' {
                        dynamic = true;
                        if chars.get(i + 1) == Some(&'(') {
                            let (inner, next) = balanced(chars, i + 2, '(', ')');
                            subs.push(inner);
                            i = next;
                            continue;
                        }
                    }
                    if chars[i] == '`' {
                        let (inner, next) = until(chars, i + 1, '`');
                        subs.push(inner);
                        dynamic = true;
                        i = next;
                        continue;
                    }
                    w.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '$' => {
                dynamic = true;
                if chars.get(i + 1) == Some(&'(') {
                    let (inner, next) = balanced(chars, i + 2, '(', ')');
                    subs.push(inner);
                    i = next;
                } else {
                    w.push('$');
                    i += 1;
                }
            }
            '`' => {
                let (inner, next) = until(chars, i + 1, '`');
                subs.push(inner);
                dynamic = true;
                i = next;
            }
            _ => {
                w.push(c);
                i += 1;
            }
        }
    }
    (w, dynamic, i, subs)
}

fn balanced(chars: &[char], mut i: usize, open: char, close: char) -> (String, usize) {
    let mut depth = 1;
    let mut s = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return (s, i + 1);
            }
        }
        s.push(c);
        i += 1;
    }
    (s, i)
}

fn until(chars: &[char], mut i: usize, end: char) -> (String, usize) {
    let mut s = String::new();
    while i < chars.len() && chars[i] != end {
        s.push(chars[i]);
        i += 1;
    }
    (s, i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    fn plain(text: &str) -> Vec<String> {
        command_words(text)
            .into_iter()
            .filter_map(|w| match w {
                Word::Plain(s) => Some(s),
                _ => None,
            })
            .collect()
    }
    #[test]
    fn wrappers_and_what_they_wrap_are_both_commands() {
        let s = "exec gosu postgres initdb -D x\nexec su-exec 999:999 redis-server\nsetpriv --reuid=1 --init-groups nginx -g x\nrunuser -u www -- php-fpm\nexec tini -- node app.js\nchroot /srv/root busybox sh\nenv -i PATH=/bin timeout 10 nice -n 5 mysqld\n";
        assert_eq!(
            plain(s),
            ["gosu", "initdb", "su-exec", "redis-server", "setpriv", "nginx", "runuser", "php-fpm", "tini", "node", "chroot", "busybox", "env", "timeout", "nice", "mysqld"]
        );
    }
    #[test]
    fn finds_commands_in_pipelines_and_substitutions() {
        let s = "#!/bin/sh\nset -e\nFOO=1 exec awk '{print $1}' \"$f\" | sed -e s/a/b/ && gzip -c x > y\nn=$(wc -l < f)\nif [ -n \"$x\" ]; then tr a b; fi\n";
        assert_eq!(plain(s), ["set", "awk", "sed", "gzip", "wc", "[", "tr"]);
    }
    #[test]
    fn heredocs_and_comments_are_skipped_dynamic_is_flagged() {
        let s = "cat <<EOF\nrm -rf /\nEOF\n# curl x\n$CMD arg\n. /etc/profile\n";
        let w = command_words(s);
        assert_eq!(w[0], Word::Plain("cat".into()));
        assert!(w.contains(&Word::Dynamic("$CMD".into())));
        assert!(w.contains(&Word::Source("/etc/profile".into())));
        assert!(!w.contains(&Word::Plain("rm".into())) && !w.contains(&Word::Plain("curl".into())));
    }
}
