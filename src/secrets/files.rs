//! Secret files: credential files known by name (each with the line that makes it a secret),
//! private keys by content, and `.git` directories.
use super::rules::{mask, path_allowed, scan};
use super::{Finding, Place};
use crate::fs::{ContentStore, Data, Node, Tree};
use rayon::prelude::*;
use regex::Regex;
use std::sync::OnceLock;

/// Files larger than this are not read for private keys (a key is a few KiB).
const MAX_KEY_FILE: u64 = 1 << 20;

struct Known {
    kind: &'static str,
    /// Whether a path is this kind of file.
    is: fn(&str, &str) -> bool,
    /// The secret's value in the file (group 1); None: any secret the rules find.
    value: Option<&'static str>,
}

fn ends(path: &str, tail: &str) -> bool {
    path.ends_with(tail)
}

/// `.env`, `.env.production`; not the committed templates (`.env.example`, `.env.sample`).
fn dotenv(name: &str) -> bool {
    let templates = ["example", "sample", "template", "dist", "defaults", "tpl"];
    name == ".env" || name.strip_prefix(".env.").is_some_and(|s| !templates.iter().any(|t| s.contains(t)))
}

const KNOWN: &[Known] = &[
    Known { kind: "npm token (.npmrc)", is: |_, n| n == ".npmrc", value: Some(r"(?m)_(?:authToken|auth|password)\s*=\s*(\S+)") },
    Known { kind: "PyPI password (.pypirc)", is: |_, n| n == ".pypirc", value: Some(r"(?mi)^\s*password\s*[=:]\s*(\S+)") },
    Known { kind: "git credentials (.git-credentials)", is: |_, n| n == ".git-credentials", value: Some(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^:\s/]+:([^@\s]+)@") },
    Known { kind: "netrc password", is: |_, n| n == ".netrc" || n == "_netrc", value: Some(r"\bpassword\s+(\S+)") },
    // Content-judged like the private keys, so exempt where gitleaks exempts (package trees).
    Known { kind: "secrets in a .env file", is: |p, n| dotenv(n) && !path_allowed(p), value: None },
    Known { kind: "registry credentials (.docker/config.json)", is: |p, _| ends(p, "/.docker/config.json"), value: Some(r#""(?:auth|identitytoken|registrytoken)"\s*:\s*"([^"]+)""#) },
    Known { kind: "AWS credentials (.aws/credentials)", is: |p, _| ends(p, "/.aws/credentials"), value: Some(r"(?mi)^\s*aws_secret_access_key\s*=\s*(\S+)") },
    Known {
        kind: "kubeconfig credentials",
        is: |p, n| ends(p, "/.kube/config") || n == "kubeconfig" || n.ends_with(".kubeconfig"),
        value: Some(r"(?m)^\s*(?:token|client-key-data|password)\s*:\s*(\S+)"),
    },
];

fn value_regexes() -> &'static Vec<Option<Regex>> {
    static RES: OnceLock<Vec<Option<Regex>>> = OnceLock::new();
    RES.get_or_init(|| KNOWN.iter().map(|k| k.value.and_then(|v| Regex::new(v).ok())).collect())
}

fn private_key_re() -> &'static Option<Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----\s*([A-Za-z0-9+/=\s:,-]{64,}?)-----END").ok())
}

/// The secret a known file holds, masked; None when it holds none (an `.npmrc` with only a
/// registry URL is not a secret file).
fn known_secret(i: usize, text: &str) -> Option<String> {
    match value_regexes().get(i).and_then(Option::as_ref) {
        Some(re) => re.captures_iter(text).filter_map(|c| c.get(1)).map(|m| m.as_str()).find(|v| !v.starts_with('$') && !v.starts_with("${")).map(mask),
        None => scan(text).first().map(|h| mask(&text[h.start..h.end])),
    }
}

fn private_key(bytes: &[u8]) -> Option<(String, String)> {
    memchr::memmem::find(bytes, b"PRIVATE KEY-----")?;
    let text = String::from_utf8_lossy(bytes);
    let c = private_key_re().as_ref()?.captures(&text)?;
    let label = c.get(1).map_or("", |m| m.as_str().trim());
    let kind = if label == "OPENSSH" { "private key (OpenSSH)".to_string() } else if label.is_empty() { "private key (PEM)".to_string() } else { format!("private key (PEM, {label})") };
    let body: String = c.get(2).map_or("", |m| m.as_str()).split_whitespace().collect();
    Some((kind, mask(&body)))
}

fn file_finding(tree: &Tree, store: &ContentStore, path: &str, id: crate::fs::NodeId) -> Option<Finding> {
    let Node::Leaf(ino) = tree.node(id) else { return None };
    let Data::File { content } = &tree.inode(*ino).data else { return None };
    let name = path.rsplit('/').next().unwrap_or("");
    let place = Place::File { path: path.to_string() };
    if let Some(i) = KNOWN.iter().position(|k| (k.is)(path, name)) {
        let text = String::from_utf8_lossy(&store.read_all(content).ok()?).into_owned();
        return known_secret(i, &text).map(|masked| Finding { place, kind: KNOWN[i].kind.to_string(), masked });
    }
    if content.len > MAX_KEY_FILE || content.len < 100 || path_allowed(path) {
        return None;
    }
    let (kind, masked) = private_key(&store.read_all(content).ok()?)?;
    Some(Finding { place, kind, masked })
}

/// Secret files and `.git` directories in the merged tree, in path order.
pub fn scan_tree(tree: &Tree, store: &ContentStore) -> Vec<Finding> {
    let all = tree.walk();
    let paths: Vec<(String, crate::fs::NodeId)> = all.into_iter().filter_map(|(p, id)| String::from_utf8(p).ok().map(|p| (format!("/{p}"), id))).collect();
    let mut out: Vec<Finding> = paths
        .par_iter()
        .filter_map(|(path, id)| {
            if matches!(tree.node(*id), Node::Dir { .. }) {
                let git = path.ends_with("/.git") && tree.children(*id).is_some_and(|c| c.contains_key(b"HEAD".as_slice()));
                return git.then(|| Finding { place: Place::File { path: path.clone() }, kind: "git directory (history, maybe credentials in .git/config)".into(), masked: String::new() });
            }
            file_finding(tree, store, path, *id)
        })
        .collect();
    out.sort_by(|a, b| a.place.cmp(&b.place));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_files_need_a_secret_in_them() {
        let npmrc = KNOWN.iter().position(|k| k.kind.contains(".npmrc")).unwrap_or(0);
        assert_eq!(known_secret(npmrc, "registry=https://registry.npmjs.org/\n"), None);
        assert_eq!(known_secret(npmrc, "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n"), None);
        assert!(known_secret(npmrc, "//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789\n").is_some());
        assert!(dotenv(".env") && dotenv(".env.production") && !dotenv(".env.example"));
    }

    #[test]
    fn private_keys_by_content() {
        let body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDxTQ1h0V8dC2lq0xQk3a9GJ2YvYv5j2n9y3QeV2nP9vAAAAJg0bD2RNGw9";
        let k = format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n");
        assert_eq!(private_key(k.as_bytes()).map(|(k, _)| k), Some("private key (OpenSSH)".into()));
        assert_eq!(private_key(b"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----"), None);
    }
}
