//! Entrypoint scripts read as a shell would, far enough to know what they run. brush-parser
//! (the parser of the brush shell, bash and POSIX sh) gives the syntax tree and splits words
//! into quoted pieces and parameter expansions; this module walks the tree with what can be
//! known statically: literal assignments (`VAR=`, `export`, `local`, `readonly`), the
//! defaults `${VAR:-x}` and `${VAR:=x}`, the image's Env, concatenation, functions called with
//! their arguments, `source`d files, and the wrappers that run another command.
use brush_parser::ast::{self, Command, CompoundCommand};
use brush_parser::word::{self, Parameter, ParameterExpr, ParameterTestType, SpecialParameter, WordPiece, WordPieceWithSource};
use brush_parser::ParserOptions;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A word's value after static expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Known(String),
    /// `"$@"` of the script itself: the Cmd.
    AllArgs,
    /// Built at run time (the word as written).
    Unknown(String),
}

/// What the script does that the plan needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A command word that resolved to a name or a path.
    Run(String),
    /// `exec "$@"` (directly, through a function or a wrapper): the Cmd runs.
    RunCmd,
    /// A command word built at run time, as written.
    Dynamic(String),
    /// A file read with `source`/`.`, already followed.
    Source(String),
    /// `source`/`.` of something not in the image or built at run time.
    SourceMissing(String),
    /// An absolute path in argument position (`cat /opt/app/conf`).
    PathArg(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    /// The script (label) the event comes from and its 1-based line.
    pub label: String,
    pub line: usize,
    pub event: Event,
}

/// Reads a file the script sources: (canonical path, text).
pub type Reader<'a> = dyn Fn(&str) -> Option<(String, String)> + 'a;

/// Programs that run another command, with their options that take a value and how many
/// positional arguments come before the command (`gosu USER CMD`, `timeout 10 CMD`).
const WRAPPERS: &[(&str, &[&str], usize)] = &[
    ("gosu", &[], 1),
    ("su-exec", &[], 1),
    ("s6-setuidgid", &[], 1),
    ("setpriv", &["--reuid", "--regid", "--ruid", "--euid", "--rgid", "--egid", "--groups", "--inh-caps", "--ambient-caps", "--bounding-set", "--securebits", "--pdeathsig", "--selinux-label", "--apparmor-profile"], 0),
    ("runuser", &["-u", "--user", "-g", "--group", "-G", "--supp-group", "-s", "--shell", "-w", "--whitelist-environment"], 0),
    ("chroot", &["--userspec", "--groups"], 1),
    ("env", &["-u", "--unset", "-C", "--chdir"], 0),
    ("nice", &["-n", "--adjustment"], 0),
    ("timeout", &["-s", "--signal", "-k", "--kill-after"], 1),
    ("tini", &["-p", "-e"], 0),
    ("dumb-init", &["-r", "--rewrite"], 0),
    ("nohup", &[], 0),
    ("setsid", &[], 0),
    ("stdbuf", &["-i", "-o", "-e"], 0),
    ("ionice", &["-c", "-n"], 0),
    ("xargs", &["-I", "-n", "-P", "-d", "-s", "-L", "-a", "-E"], 0),
];
pub const SHELLS: &[&str] = &["sh", "bash", "dash", "ash", "ksh", "zsh", "busybox"];
const DECLARE: &[&str] = &["export", "local", "readonly", "declare", "typeset"];
/// Bounds on the walk: nested calls and walks of one function body.
const MAX_DEPTH: usize = 24;
const MAX_CALLS: usize = 8;

/// What `"$@"` is where the walk is: the script's arguments (the Cmd) or a function's.
#[derive(Clone)]
enum Frame {
    Cmd,
    Words(Vec<Val>),
}

pub struct Interp<'a> {
    vars: HashMap<String, String>,
    funcs: BTreeMap<String, ast::FunctionBody>,
    calls: HashMap<String, usize>,
    read: &'a Reader<'a>,
    sourced: BTreeSet<String>,
    label: String,
    line_base: usize,
    line: usize,
    depth: usize,
    frame: Frame,
    pub events: Vec<At>,
}

fn options() -> ParserOptions {
    ParserOptions::default()
}

/// Parse shell text; None when brush-parser rejects it.
pub fn parse(text: &str) -> Option<ast::Program> {
    let mut p = brush_parser::Parser::new(std::io::Cursor::new(text.as_bytes()), &options());
    p.parse_program().ok()
}

/// Walk a script: None when it does not parse (the caller falls back to a word scan).
pub fn run_script(text: &str, path: Option<&str>, label: &str, env: &[(String, String)], read: &Reader) -> Option<Vec<At>> {
    let prog = parse(text)?;
    let mut it = Interp::new(label, env, read);
    if let Some(p) = path {
        it.sourced.insert(p.to_string());
        it.vars.insert("BASH_SOURCE".into(), p.to_string());
        it.vars.insert("0".into(), p.to_string());
    }
    it.program(&prog);
    it.uncalled_functions();
    Some(it.events)
}

impl<'a> Interp<'a> {
    fn new(label: &str, env: &[(String, String)], read: &'a Reader<'a>) -> Self {
        Interp {
            vars: env.iter().cloned().collect(),
            funcs: BTreeMap::new(),
            calls: HashMap::new(),
            read,
            sourced: BTreeSet::new(),
            label: label.to_string(),
            line_base: 0,
            line: 1,
            depth: 0,
            frame: Frame::Cmd,
            events: Vec::new(),
        }
    }

    fn emit(&mut self, event: Event) {
        self.events.push(At { label: self.label.clone(), line: self.line, event });
    }

    fn program(&mut self, p: &ast::Program) {
        for cc in &p.complete_commands {
            self.list(cc);
        }
    }

    fn list(&mut self, l: &ast::CompoundList) {
        for item in &l.0 {
            self.pipeline(&item.0.first);
            for more in &item.0.additional {
                match more {
                    ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p),
                }
            }
        }
    }

    fn pipeline(&mut self, p: &ast::Pipeline) {
        for c in &p.seq {
            self.command(c);
        }
    }

    fn command(&mut self, c: &Command) {
        match c {
            Command::Simple(s) => self.simple(s),
            Command::Compound(cc, redirs) => {
                self.compound(cc);
                for r in redirs.iter().flat_map(|r| r.0.iter()) {
                    self.redirect(r);
                }
            }
            Command::Function(f) => {
                self.funcs.insert(f.fname.value.clone(), f.body.clone());
            }
            Command::ExtendedTest(..) => {}
        }
    }

    fn compound(&mut self, c: &CompoundCommand) {
        match c {
            CompoundCommand::BraceGroup(b) => self.list(&b.list),
            CompoundCommand::Subshell(s) => self.list(&s.list),
            CompoundCommand::ForClause(f) => {
                // `for p in /opt/a /srv/b; do … "$p"`: the loop's body uses each value, and the
                // variable itself is unknown after the loop.
                for w in f.values.iter().flatten() {
                    self.set_line(w);
                    for v in self.eval(w) {
                        if let Val::Known(p) = v {
                            self.path_arg(p);
                        }
                    }
                }
                self.vars.remove(&f.variable_name);
                self.list(&f.body.list);
            }
            CompoundCommand::CaseClause(c) => {
                self.eval(&c.value);
                for item in &c.cases {
                    if let Some(l) = &item.cmd {
                        self.list(l);
                    }
                }
            }
            CompoundCommand::IfClause(i) => {
                self.list(&i.condition);
                self.list(&i.then);
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.list(c);
                    }
                    self.list(&e.body);
                }
            }
            CompoundCommand::WhileClause(w) | CompoundCommand::UntilClause(w) => {
                self.list(&w.0);
                self.list(&w.1.list);
            }
            CompoundCommand::Coprocess(c) => self.command(&c.body),
            CompoundCommand::Arithmetic(_) | CompoundCommand::ArithmeticForClause(_) => {}
        }
    }

    fn set_line(&mut self, w: &ast::Word) {
        if let Some(loc) = &w.loc {
            self.line = self.line_base + loc.start.line;
        }
    }

    fn simple(&mut self, s: &ast::SimpleCommand) {
        let prefix = s.prefix.iter().flat_map(|p| p.0.iter());
        let suffix: Vec<&ast::CommandPrefixOrSuffixItem> = s.suffix.iter().flat_map(|p| p.0.iter()).collect();
        let Some(name) = &s.word_or_name else {
            // Assignments alone set variables for the rest of the script.
            for item in prefix {
                self.prefix_item(item, true);
            }
            return;
        };
        for item in prefix {
            self.prefix_item(item, false);
        }
        self.set_line(name);
        let mut argv = self.eval(name);
        let declares = matches!(argv.first(), Some(Val::Known(n)) if DECLARE.contains(&n.as_str()));
        for item in suffix {
            match item {
                ast::CommandPrefixOrSuffixItem::Word(w) => argv.extend(self.eval(w)),
                ast::CommandPrefixOrSuffixItem::AssignmentWord(a, w) => {
                    if declares {
                        self.assign(a);
                    } else {
                        argv.push(Val::Known(w.value.clone()));
                    }
                }
                ast::CommandPrefixOrSuffixItem::IoRedirect(r) => self.redirect(r),
                ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub) => self.list(&sub.list),
            }
        }
        self.set_line(name);
        self.run(&argv);
    }

    fn prefix_item(&mut self, item: &ast::CommandPrefixOrSuffixItem, persist: bool) {
        match item {
            ast::CommandPrefixOrSuffixItem::AssignmentWord(a, w) => {
                self.set_line(w);
                if persist {
                    self.assign(a);
                } else if let ast::AssignmentValue::Scalar(v) = &a.value {
                    self.eval(v);
                }
            }
            ast::CommandPrefixOrSuffixItem::IoRedirect(r) => self.redirect(r),
            ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub) => self.list(&sub.list),
            ast::CommandPrefixOrSuffixItem::Word(w) => {
                self.eval(w);
            }
        }
    }

    fn assign(&mut self, a: &ast::Assignment) {
        let ast::AssignmentName::VariableName(name) = &a.name else { return };
        let value = match &a.value {
            ast::AssignmentValue::Scalar(w) => self.eval(w),
            ast::AssignmentValue::Array(items) => {
                for (k, v) in items {
                    k.iter().for_each(|k| drop(self.eval(k)));
                    self.eval(v);
                }
                Vec::new()
            }
        };
        match (value.as_slice(), a.append) {
            ([Val::Known(v)], false) => {
                self.vars.insert(name.clone(), v.clone());
            }
            ([Val::Known(v)], true) if self.vars.contains_key(name) => {
                let old = self.vars.get(name).cloned().unwrap_or_default();
                self.vars.insert(name.clone(), old + v);
            }
            _ => {
                self.vars.remove(name);
            }
        }
    }

    fn redirect(&mut self, r: &ast::IoRedirect) {
        match r {
            ast::IoRedirect::File(_, kind, ast::IoFileRedirectTarget::Filename(w)) => {
                let v = self.eval(w);
                if matches!(kind, ast::IoFileRedirectKind::Read) {
                    if let [Val::Known(p)] = v.as_slice() {
                        self.path_arg(p.clone());
                    }
                }
            }
            ast::IoRedirect::File(_, _, ast::IoFileRedirectTarget::ProcessSubstitution(_, sub)) => self.list(&sub.list),
            ast::IoRedirect::HereString(_, w) | ast::IoRedirect::OutputAndError(w, _) => {
                self.eval(w);
            }
            _ => {}
        }
    }

    fn path_arg(&mut self, p: String) {
        if p.starts_with('/') && p.len() > 1 {
            self.emit(Event::PathArg(p));
        }
    }
}

/// The literal text of a value.
fn known(v: &Val) -> Option<&str> {
    match v {
        Val::Known(s) => Some(s),
        _ => None,
    }
}

fn is_assignment(w: &str) -> bool {
    match w.find('=') {
        Some(p) if p > 0 => w[..p].chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        _ => false,
    }
}

/// Where the wrapped command starts in a wrapper's argv (None: no command follows).
fn wrapped_at(name: &str, argv: &[Val]) -> Option<usize> {
    let (_, with_value, positional) = WRAPPERS.iter().find(|w| w.0 == name)?;
    let mut positional = *positional;
    let mut options = true;
    let mut i = 1;
    while i < argv.len() {
        match known(&argv[i]) {
            Some("--") if options => {
                options = false;
                i += 1;
                continue;
            }
            Some(s) if options && s.starts_with('-') && s.len() > 1 => {
                i += if with_value.contains(&s) { 2 } else { 1 };
                continue;
            }
            Some(s) if name == "env" && is_assignment(s) => {
                i += 1;
                continue;
            }
            _ => {}
        }
        if positional == 0 {
            return Some(i);
        }
        positional -= 1;
        i += 1;
    }
    None
}

/// `find … -exec CMD … ;`: the commands `find` runs.
fn find_execs(argv: &[Val]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        if matches!(known(&argv[i]), Some("-exec" | "-execdir" | "-ok" | "-okdir")) {
            let end = (i + 1..argv.len()).find(|j| matches!(known(&argv[*j]), Some(";" | "+"))).unwrap_or(argv.len());
            out.push(i + 1..end);
            i = end;
        }
        i += 1;
    }
    out
}

impl<'a> Interp<'a> {
    /// Run an expanded argv: builtins that matter, functions, wrappers, then the command.
    fn run(&mut self, argv: &[Val]) {
        let Some(first) = argv.first() else { return };
        let name = match first {
            Val::Known(n) => n.clone(),
            Val::AllArgs => return self.emit(Event::RunCmd),
            Val::Unknown(raw) => return self.emit(Event::Dynamic(raw.clone())),
        };
        for a in &argv[1..] {
            if let Val::Known(p) = a {
                self.path_arg(p.clone());
            }
        }
        match name.as_str() {
            "." | "source" => self.source(argv.get(1)),
            "exec" => self.run(&argv[exec_args(argv)..]),
            "command" if !matches!(argv.get(1).and_then(known), Some("-v" | "-V")) => self.run(&argv[1..]),
            "builtin" | "command" => {}
            "eval" => self.eval_builtin(argv),
            n if DECLARE.contains(&n) => self.declare(&argv[1..]),
            n if self.funcs.contains_key(n) => self.call(n, &argv[1..]),
            _ => self.external(&name, argv),
        }
    }

    fn external(&mut self, name: &str, argv: &[Val]) {
        self.emit(Event::Run(name.to_string()));
        let base = name.rsplit('/').next().unwrap_or(name);
        if SHELLS.contains(&base) || base == "runuser" || base == "su" {
            if let Some(i) = argv.iter().position(|a| known(a) == Some("-c")) {
                // A double-quoted string with expansions: expanding inside the nested walk
                // gives the same words for what can be known.
                let code = match argv.get(i + 1) {
                    Some(Val::Known(c)) => c.clone(),
                    Some(Val::Unknown(raw)) => raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(raw).to_string(),
                    _ => return,
                };
                if !self.nested(&code) {
                    self.emit(Event::Dynamic(code));
                }
                return;
            }
        }
        if base == "find" {
            for r in find_execs(argv) {
                self.run(&argv[r]);
            }
            return;
        }
        if let Some(i) = wrapped_at(base, argv) {
            self.run(&argv[i..]);
        }
    }

    /// `eval`: the text up to the first expansion is read as code when it names its command
    /// literally (postgres' `eval 'initdb …'"$ARGS"`); otherwise the eval stays a risk.
    fn eval_builtin(&mut self, argv: &[Val]) {
        let mut code = String::new();
        for a in &argv[1..] {
            match a {
                Val::Known(s) => code.push_str(s),
                Val::Unknown(raw) => {
                    code.push_str(&self.literal_prefix(raw));
                    break;
                }
                Val::AllArgs => break,
            }
            code.push(' ');
        }
        let first = code.split_whitespace().next().unwrap_or_default();
        if first.is_empty() || first.contains('$') || !self.nested(&code) {
            self.emit(Event::Run("eval".into()));
        }
    }

    /// The quoted literal text a word starts with, up to its first expansion.
    fn literal_prefix(&self, raw: &str) -> String {
        let Ok(pieces) = word::parse(raw, &options()) else { return String::new() };
        let mut out = String::new();
        for p in &pieces {
            match &p.piece {
                WordPiece::Text(s) | WordPiece::SingleQuotedText(s) => out.push_str(s),
                _ => break,
            }
        }
        out
    }

    /// `export`/`local`/`readonly` arguments written as words (`export "X=$Y"`).
    fn declare(&mut self, args: &[Val]) {
        for a in args {
            match a {
                Val::Known(s) if is_assignment(s) => {
                    if let Some((k, v)) = s.split_once('=') {
                        self.vars.insert(k.to_string(), v.to_string());
                    }
                }
                Val::Unknown(raw) if is_assignment(raw.trim_matches('"')) => {
                    let k = raw.trim_matches('"').split('=').next().unwrap_or_default().to_string();
                    self.vars.remove(&k);
                }
                _ => {}
            }
        }
    }

    /// A function call walks its body with the call's arguments as `"$@"`.
    fn call(&mut self, name: &str, args: &[Val]) {
        let n = self.calls.entry(name.to_string()).or_default();
        *n += 1;
        if *n > MAX_CALLS || self.depth >= MAX_DEPTH {
            return;
        }
        let Some(body) = self.funcs.get(name).cloned() else { return };
        let frame = std::mem::replace(&mut self.frame, Frame::Words(args.to_vec()));
        let line = self.line;
        self.depth += 1;
        self.compound(&body.0);
        self.depth -= 1;
        self.frame = frame;
        self.line = line;
    }

    /// Functions defined but never called here may be called by a script that sources this
    /// one: walked once, with the script's arguments.
    fn uncalled_functions(&mut self) {
        let names: Vec<String> = self.funcs.keys().filter(|n| !self.calls.contains_key(*n)).cloned().collect();
        for n in names {
            self.frame = Frame::Cmd;
            self.call(&n, &[Val::AllArgs]);
        }
    }

    fn source(&mut self, what: Option<&Val>) {
        let Some(what) = what else { return };
        let Val::Known(p) = what else {
            if let Val::Unknown(raw) = what {
                self.emit(Event::SourceMissing(raw.clone()));
            }
            return;
        };
        let Some((path, text)) = (self.read)(p) else {
            return self.emit(Event::SourceMissing(p.clone()));
        };
        self.emit(Event::Source(path.clone()));
        if !self.sourced.insert(path.clone()) || self.depth >= MAX_DEPTH {
            return;
        }
        let Some(prog) = parse(&text) else { return };
        let label = format!("{path} (sourced from {})", self.label);
        let saved = (std::mem::replace(&mut self.label, label), self.line_base, self.line);
        self.line_base = 0;
        self.depth += 1;
        self.program(&prog);
        self.depth -= 1;
        (self.label, self.line_base, self.line) = saved;
    }

    /// Code inside `$(…)`, backticks or `sh -c '…'`: walked in place.
    fn nested(&mut self, code: &str) -> bool {
        if self.depth >= MAX_DEPTH {
            return true;
        }
        let Some(prog) = parse(code) else { return false };
        let saved = (self.line_base, self.line);
        self.line_base = self.line.saturating_sub(1);
        self.depth += 1;
        self.program(&prog);
        self.depth -= 1;
        (self.line_base, self.line) = saved;
        true
    }
}

/// Index after `exec` and its options (`exec -a NAME cmd`).
fn exec_args(argv: &[Val]) -> usize {
    let mut i = 1;
    while let Some(s) = argv.get(i).and_then(known).filter(|s| s.starts_with('-')) {
        i += if s == "-a" { 2 } else { 1 };
    }
    i
}

impl<'a> Interp<'a> {
    /// Expand one word: `"$@"` gives the frame's arguments; anything else one value.
    fn eval(&mut self, w: &ast::Word) -> Vec<Val> {
        let Ok(pieces) = word::parse(&w.value, &options()) else { return vec![Val::Unknown(w.value.clone())] };
        if is_all_args(&pieces) {
            return match &self.frame {
                Frame::Cmd => vec![Val::AllArgs],
                Frame::Words(v) => v.clone(),
            };
        }
        match self.concat(&pieces) {
            Some(s) => vec![Val::Known(s)],
            None => vec![Val::Unknown(w.value.clone())],
        }
    }

    /// Concatenate pieces; every piece is expanded (for `:=` and substitutions) even once
    /// the result is known to be unknown.
    fn concat(&mut self, pieces: &[WordPieceWithSource]) -> Option<String> {
        let mut out = Some(String::new());
        for p in pieces {
            let v = self.piece(&p.piece);
            out = match (out, v) {
                (Some(mut s), Some(v)) => {
                    s.push_str(&v);
                    Some(s)
                }
                _ => None,
            };
        }
        out
    }

    fn piece(&mut self, p: &WordPiece) -> Option<String> {
        match p {
            WordPiece::Text(s) | WordPiece::SingleQuotedText(s) | WordPiece::AnsiCQuotedText(s) => Some(s.clone()),
            WordPiece::EscapeSequence(s) => Some(s.strip_prefix('\\').unwrap_or(s).to_string()),
            WordPiece::DoubleQuotedSequence(v) | WordPiece::GettextDoubleQuotedSequence(v) => self.concat(v),
            WordPiece::TildeExpansion(word::TildeExpr::Home) => self.vars.get("HOME").cloned(),
            WordPiece::ParameterExpansion(e) => self.parameter(e),
            WordPiece::CommandSubstitution(code) | WordPiece::BackquotedCommandSubstitution(code) => {
                if !self.nested(code) {
                    self.emit(Event::Dynamic(format!("$({code})")));
                }
                None
            }
            _ => None,
        }
    }

    fn lookup(&self, p: &Parameter, test: Option<&ParameterTestType>) -> Option<String> {
        let v = match p {
            Parameter::Named(n) => self.vars.get(n).cloned(),
            Parameter::NamedWithIndex { name, index } if index == "0" => self.vars.get(name).cloned(),
            Parameter::Positional(0) | Parameter::Special(SpecialParameter::ShellName) => self.vars.get("0").cloned(),
            Parameter::Positional(i) => match &self.frame {
                Frame::Words(v) => v.get(*i as usize - 1).and_then(known).map(str::to_string),
                Frame::Cmd => None,
            },
            _ => None,
        };
        v.filter(|s| !(s.is_empty() && matches!(test, Some(ParameterTestType::UnsetOrNull))))
    }

    fn parameter(&mut self, e: &ParameterExpr) -> Option<String> {
        match e {
            ParameterExpr::Parameter { parameter, indirect: false } => self.lookup(parameter, None),
            ParameterExpr::UseDefaultValues { parameter, indirect: false, test_type, default_value } => {
                let v = self.lookup(parameter, Some(test_type));
                let d = self.default(default_value.as_deref());
                v.or(d)
            }
            ParameterExpr::AssignDefaultValues { parameter, indirect: false, test_type, default_value } => {
                let v = self.lookup(parameter, Some(test_type));
                let d = self.default(default_value.as_deref());
                if let (None, Some(d), Parameter::Named(n)) = (&v, &d, parameter) {
                    self.vars.insert(n.clone(), d.clone());
                }
                v.or(d)
            }
            _ => None,
        }
    }

    /// The text after `:-`/`:=`, itself a word.
    fn default(&mut self, d: Option<&str>) -> Option<String> {
        let d = d.unwrap_or_default();
        let pieces = word::parse(d, &options()).ok()?;
        self.concat(&pieces)
    }
}

fn is_all_args(pieces: &[WordPieceWithSource]) -> bool {
    let all = |p: &WordPiece| {
        matches!(p, WordPiece::ParameterExpansion(ParameterExpr::Parameter { parameter: Parameter::Special(SpecialParameter::AllPositionalParameters { .. }), .. }))
    };
    match pieces {
        [p] => match &p.piece {
            WordPiece::DoubleQuotedSequence(v) => matches!(v.as_slice(), [q] if all(&q.piece)),
            other => all(other),
        },
        _ => false,
    }
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;
