//! The token shapes: gitleaks' default rule file (`gitleaks.toml`, MIT, vendored as data with
//! its licence beside it), applied the way gitleaks applies it: a keyword prefilter on the
//! lower-cased text, the rule's regex, its secret group, an entropy floor, then the global and
//! per-rule allowlists. Two rules of imgslim's own cover what a token-shape set cannot:
//! secret-named assignments (`PASSWORD=hunter2` has too little entropy for gitleaks' generic
//! rule) and credentials inside URLs.
use regex::bytes::Regex;
use serde::Deserialize;
use std::sync::OnceLock;

const GITLEAKS: &str = include_str!("gitleaks.toml");

#[derive(Deserialize)]
struct File {
    allowlist: Allow,
    rules: Vec<RawRule>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Allow {
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    #[serde(default)]
    regex_target: Option<String>,
    #[serde(default)]
    paths: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    id: String,
    regex: Option<String>,
    path: Option<String>,
    #[serde(default)]
    entropy: f64,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    secret_group: usize,
    #[serde(default)]
    allowlists: Vec<Allow>,
}

struct AllowSet {
    regexes: Vec<Regex>,
    stopwords: Vec<String>,
    target: Target,
}

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Secret,
    Match,
    Line,
}

struct Rule {
    id: String,
    pattern: String,
    /// Compiled when its keywords first appear: most rules never run on an image.
    regex: OnceLock<Option<Regex>>,
    entropy: f64,
    keywords: Vec<String>,
    group: usize,
    allow: Vec<AllowSet>,
}

struct Rules {
    /// gitleaks' global allowlist and imgslim's.
    global: Vec<AllowSet>,
    /// gitleaks' global path allowlist (vendored code, lock files, site-packages, node_modules)
    /// and imgslim's own.
    paths: Vec<Regex>,
    rules: Vec<Rule>,
}

/// imgslim's addition to the global allowlist (matched against the whole match): public key
/// fingerprints (`ENV GPG_KEY=…` in the official python images) are not secrets.
const IMGSLIM_ALLOW: &str = r"(?i)(?:gpg|pgp)[_.-]?keys?\b|fingerprint";

/// imgslim's addition to the path allowlist: the key Debian's ssl-cert package generates at
/// install time, a documented placeholder ("snake oil") that no one trusts.
const IMGSLIM_PATHS: &str = r"(?:^|/)ssl-cert-snakeoil\.key$";

/// Whether a file's contents are exempt from the content rules, as gitleaks exempts them.
pub fn path_allowed(path: &str) -> bool {
    rules().paths.iter().any(|r| r.is_match(path.trim_start_matches('/').as_bytes()))
}

impl Rule {
    fn regex(&self) -> Option<&Regex> {
        self.regex.get_or_init(|| compile(&self.pattern)).as_ref()
    }
}

/// One secret found in a text: the rule and the byte span of the secret itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub rule: String,
    pub start: usize,
    pub end: usize,
}

/// Go's RE2, which gitleaks uses, reads `\w`, `\s` and `\b` as ASCII: so does this, on bytes,
/// which also keeps each regex small enough to compile in milliseconds.
fn compile(p: &str) -> Option<Regex> {
    regex::bytes::RegexBuilder::new(p).unicode(false).size_limit(64 << 20).build().ok()
}

fn allow_set(a: &Allow) -> AllowSet {
    let target = match a.regex_target.as_deref() {
        Some("match") => Target::Match,
        Some("line") => Target::Line,
        _ => Target::Secret,
    };
    AllowSet { regexes: a.regexes.iter().filter_map(|r| compile(r)).collect(), stopwords: a.stopwords.iter().map(|s| s.to_lowercase()).collect(), target }
}

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| {
        // The vendored file is part of the binary: a parse failure is a build defect, caught by
        // the unit test below, and leaves only imgslim's own rules rather than panicking.
        let file: File = toml::from_str(GITLEAKS).unwrap_or(File { allowlist: Allow::default(), rules: Vec::new() });
        let mut rules = Vec::new();
        for r in file.rules {
            // Path-scoped rules (a `.p12` file, a `.tf` file) judge files by name: the file
            // kinds in files.rs do that here.
            let (Some(pattern), None) = (r.regex, &r.path) else { continue };
            // An allowlist that only names paths does not apply to history or Env text.
            let allow = r.allowlists.iter().filter(|a| a.paths.is_empty()).map(allow_set).collect();
            rules.push(Rule { id: r.id, pattern, regex: OnceLock::new(), entropy: r.entropy, keywords: r.keywords.iter().map(|k| k.to_lowercase()).collect(), group: r.secret_group, allow });
        }
        let ours = AllowSet { regexes: compile(IMGSLIM_ALLOW).into_iter().collect(), stopwords: Vec::new(), target: Target::Match };
        let paths = file.allowlist.paths.iter().chain([&IMGSLIM_PATHS.to_string()]).filter_map(|p| compile(p)).collect();
        Rules { global: vec![allow_set(&file.allowlist), ours], rules, paths }
    })
}

/// Shannon entropy in bits per byte, as gitleaks computes it.
fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| -(c as f64 / n) * (c as f64 / n).log2()).sum()
}

/// The byte span widened to whole characters: the byte regexes may cut a multi-byte one.
fn on_chars(text: &str, mut a: usize, mut b: usize) -> (usize, usize) {
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    while !text.is_char_boundary(b) {
        b += 1;
    }
    (a, b)
}

fn line_of(text: &str, start: usize, end: usize) -> &str {
    let a = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let b = text[end..].find('\n').map_or(text.len(), |i| end + i);
    &text[a..b]
}

fn allowed(a: &AllowSet, secret: &str, whole: &str, line: &str) -> bool {
    let target = match a.target {
        Target::Secret => secret,
        Target::Match => whole,
        Target::Line => line,
    };
    let lower = secret.to_lowercase();
    a.regexes.iter().any(|r| r.is_match(target.as_bytes())) || a.stopwords.iter().any(|w| lower.contains(w.as_str()))
}

fn gitleaks_hits(text: &str, out: &mut Vec<Hit>) {
    let rs = rules();
    let lower = text.to_lowercase();
    // to_lowercase may change byte lengths (non-ASCII); keywords are only a prefilter.
    for r in rs.rules.iter().filter(|r| r.keywords.is_empty() || r.keywords.iter().any(|k| lower.contains(k.as_str()))) {
        let Some(re) = r.regex() else { continue };
        for c in re.captures_iter(text.as_bytes()) {
            let Some(w) = c.get(0) else { continue };
            let m = if r.group > 0 { c.get(r.group) } else { (1..c.len()).find_map(|i| c.get(i)) }.unwrap_or(w);
            let (start, end) = on_chars(text, m.start(), m.end());
            let (ws, we) = on_chars(text, w.start(), w.end());
            let secret = &text[start..end];
            if secret.is_empty() || (r.entropy > 0.0 && entropy(secret) < r.entropy) {
                continue;
            }
            let (whole, line) = (&text[ws..we], line_of(text, ws, we));
            if rs.global.iter().chain(&r.allow).any(|a| allowed(a, secret, whole, line)) {
                continue;
            }
            out.push(Hit { rule: r.id.clone(), start, end });
        }
    }
}

/// Words that make a variable name a secret's name (`NPM_TOKEN`, `DB_PASSWORD`, `AWS_SECRET_ACCESS_KEY`).
const SECRET_WORDS: &[&str] = &["PASSWORD", "PASSWD", "PASS", "TOKEN", "SECRET", "APIKEY", "CREDENTIAL", "CREDENTIALS", "AUTHTOKEN", "PRIVATEKEY"];
/// Pairs of words that do the same (`API_KEY`, `ACCESS_KEY`, `PRIVATE_KEY`).
const SECRET_PAIRS: &[(&str, &str)] = &[("API", "KEY"), ("ACCESS", "KEY"), ("SECRET", "KEY"), ("PRIVATE", "KEY"), ("AUTH", "TOKEN"), ("CLIENT", "SECRET")];
/// A last word that makes it name something else: where a secret is, or how long it is.
const NOT_SECRET_SUFFIX: &[&str] = &["FILE", "PATH", "DIR", "NAME", "ID", "USER", "USERNAME", "LENGTH", "SIZE", "MIN", "MAX", "TYPE", "ENABLED", "URL", "HOST", "PORT", "HINT"];

/// Whether an environment or build-argument name names a secret.
pub fn secret_name(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    let parts: Vec<&str> = up.split(['_', '-', '.']).filter(|p| !p.is_empty()).collect();
    if parts.last().is_some_and(|l| NOT_SECRET_SUFFIX.contains(l)) {
        return false;
    }
    parts.iter().any(|p| SECRET_WORDS.contains(p)) || parts.windows(2).any(|w| SECRET_PAIRS.contains(&(w[0], w[1])))
}

/// A value that is not itself a secret: empty, a variable reference, or a placeholder.
fn placeholder(v: &str) -> bool {
    let v = v.trim_matches(|c| c == '"' || c == '\'');
    v.is_empty() || v.starts_with('$') || v.starts_with('<') || v == REDACTED || v.chars().all(|c| c == '*' || c == 'x' || c == 'X')
}

// Constant patterns: a failure to compile is a defect the unit tests catch.
fn assignment_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r#"(?:^|[\s;&|(])([A-Za-z_][A-Za-z0-9_.-]*)=("[^"]*"|'[^']*'|[^\s;&|)]+)"#).expect("constant pattern"))
}

fn url_re() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r#"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@'"]+:([^\s/@'"]+)@[^\s/'"@]"#).expect("constant pattern"))
}

/// `NAME=value` (ARG/ENV lines, `RUN |2 NPM_TOKEN=… /bin/sh -c …` build-arg records,
/// `--build-arg NAME=value`) where NAME is a secret's name.
fn assignment_hits(text: &str, out: &mut Vec<Hit>) {
    for c in assignment_re().captures_iter(text) {
        let (Some(name), Some(value)) = (c.get(1), c.get(2)) else { continue };
        if secret_name(name.as_str()) && !placeholder(value.as_str()) {
            out.push(Hit { rule: format!("secret-assignment {}", name.as_str()), start: value.start(), end: value.end() });
        }
    }
}

fn url_hits(text: &str, out: &mut Vec<Hit>) {
    for c in url_re().captures_iter(text) {
        let Some(pw) = c.get(1) else { continue };
        if !placeholder(pw.as_str()) {
            out.push(Hit { rule: "credentials-in-url".into(), start: pw.start(), end: pw.end() });
        }
    }
}

/// Every secret in a piece of text (a history line, an Env value, a secret file), in order.
pub fn scan(text: &str) -> Vec<Hit> {
    let mut out = Vec::new();
    gitleaks_hits(text, &mut out);
    assignment_hits(text, &mut out);
    url_hits(text, &mut out);
    out.sort_by(|a, b| (a.start, a.end, &a.rule).cmp(&(b.start, b.end, &b.rule)));
    out
}

const REDACTED: &str = "[REDACTED]";

/// The text with every hit's span replaced by `[REDACTED]` (overlapping spans merged).
pub fn redact(text: &str, hits: &[Hit]) -> String {
    let mut spans: Vec<(usize, usize)> = hits.iter().map(|h| (h.start, h.end)).collect();
    spans.sort();
    let mut out = String::new();
    let mut at = 0;
    for (s, e) in spans {
        if e <= at {
            continue;
        }
        out.push_str(&text[at..s.max(at)]);
        out.push_str(REDACTED);
        at = e;
    }
    out.push_str(&text[at..]);
    out
}

/// What a finding may show of a secret: a short prefix, never enough to use it.
pub fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    let shown: String = secret.chars().take((n / 5).min(4)).collect();
    format!("{shown}**** ({n} chars)")
}

/// The gitleaks rules in use, and the ids of those Rust's regex engine cannot compile.
pub fn gitleaks_rules() -> (usize, Vec<String>) {
    let r = rules();
    (r.rules.len(), r.rules.iter().filter(|r| r.regex().is_none()).map(|r| r.id.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of(t: &str) -> Vec<String> {
        scan(t).into_iter().map(|h| h.rule).collect()
    }

    #[test]
    fn the_vendored_gitleaks_rules_all_compile() {
        let (n, skipped) = gitleaks_rules();
        assert!(n > 200, "{n}");
        assert!(skipped.is_empty(), "{skipped:?}");
    }

    #[test]
    fn token_shapes_and_assignments_are_found() {
        assert!(rules_of("ENV AWS_KEY_ID=AKIAZ7VRSQ5TJN2LKXQM").contains(&"aws-access-token".to_string()));
        assert!(rules_of("RUN git clone https://ghp_Zr4bQp1mX9aT7kLw3nV8cY2dF6hJ0sE5uG1i@github.com/x/y").contains(&"github-pat".to_string()));
        assert!(rules_of("ARG DB_PASSWORD=hunter2").contains(&"secret-assignment DB_PASSWORD".to_string()));
        assert!(rules_of("RUN |1 NPM_TOKEN=abc123 /bin/sh -c npm ci").contains(&"secret-assignment NPM_TOKEN".to_string()));
        assert!(rules_of("RUN curl -o x https://deploy:s3cr3tpw@example.com/a").contains(&"credentials-in-url".to_string()));
        assert!(rules_of("glpat-Xk3v9QpL2mZ7tR4wN8bY").contains(&"gitlab-pat".to_string()));
    }

    #[test]
    fn ordinary_lines_are_not_secrets() {
        for t in [
            "ENV PATH=/usr/local/bin:/usr/bin",
            "ENV GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D",
            "ENV POSTGRES_PASSWORD_FILE=/run/secrets/pw",
            "RUN echo $TOKEN; export PASSWORD=${PASSWORD}",
            "/bin/sh -c #(nop) ADD file:4b03b5f551e3fbdf47ec609712007327828f7530cc3455c43bbcdcaf449a75a9 in / ",
            "RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl",
            "ENV PYTHON_SHA256=24887b92e2afd4a2ac602419ad4b596372f67ac9b077190f459aba390faf5550",
        ] {
            assert_eq!(rules_of(t), Vec::<String>::new(), "{t}");
        }
    }

    #[test]
    fn redaction_and_masks_hide_the_secret() {
        let t = "ARG DB_PASSWORD=hunter2 TOKEN=ghp_Zr4bQp1mX9aT7kLw3nV8cY2dF6hJ0sE5uG1i";
        let r = redact(t, &scan(t));
        assert_eq!(r, "ARG DB_PASSWORD=[REDACTED] TOKEN=[REDACTED]");
        assert_eq!(mask("ghp_Zr4bQp1mX9aT7kLw3nV8cY2dF6hJ0sE5uG1i"), "ghp_**** (40 chars)");
        assert_eq!(mask("hunter2"), "h**** (7 chars)");
    }
}
