//! Secrets left in an image: in the build history (`created_by`), in the config's Env, and in
//! files. Findings name the place and the kind and show only a masked prefix. `slim
//! --scrub-secrets` redacts history lines, removes secret Env entries and drops secret files.
mod files;
pub mod rules;

use crate::fs::{ContentStore, Tree};
use crate::image::config::{runtime, string_list};
use crate::plan::{Plan, RuleStat};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub use files::scan_tree;

/// Where a secret is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "place", rename_all = "lowercase")]
pub enum Place {
    /// `history[index].created_by` (or its comment).
    History { index: usize },
    /// An `Env` entry of the config.
    Env { key: String },
    File { path: String },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    #[serde(flatten)]
    pub place: Place,
    /// The kind of secret: a gitleaks rule id, `secret-assignment NAME`, a file kind.
    pub kind: String,
    /// A short prefix and the length; never the secret.
    pub masked: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match &self.place {
            Place::History { index } => write!(f, "history[{index}] created_by")?,
            Place::Env { key } => write!(f, "Env {key}")?,
            Place::File { path } => write!(f, "{path}")?,
        }
        write!(f, ": {}", self.kind)?;
        if !self.masked.is_empty() {
            write!(f, " {}", self.masked)?;
        }
        Ok(())
    }
}

fn history(cfg: &Value) -> &[Value] {
    cfg.get("history").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn text_findings(text: &str, place: &Place, out: &mut Vec<Finding>) {
    for h in rules::scan(text) {
        out.push(Finding { place: place.clone(), kind: h.rule, masked: rules::mask(&text[h.start..h.end]) });
    }
}

/// Secrets in `history[].created_by` and `comment`, and in Env (a secret's name with a value,
/// or a value with a token's shape).
pub fn scan_config(cfg: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    for (index, h) in history(cfg).iter().enumerate() {
        for field in ["created_by", "comment"] {
            if let Some(t) = h.get(field).and_then(Value::as_str) {
                text_findings(t, &Place::History { index }, &mut out);
            }
        }
    }
    for e in string_list(runtime(cfg, "Env")) {
        let Some((k, v)) = e.split_once('=') else { continue };
        let place = Place::Env { key: k.to_string() };
        let before = out.len();
        text_findings(v, &place, &mut out);
        if out.len() == before && rules::secret_name(k) && !v.is_empty() && !v.starts_with('$') {
            out.push(Finding { place, kind: format!("secret-assignment {k}"), masked: rules::mask(v) });
        }
    }
    out
}

/// Every finding of an image: config first, then files.
pub fn scan_image(cfg: &Value, tree: &Tree, store: &ContentStore) -> Vec<Finding> {
    let mut f = scan_config(cfg);
    f.extend(scan_tree(tree, store));
    f
}

/// Redact the history lines and remove the secret Env entries named by `findings`. Returns
/// a note per change (which entry, which Env key) for the summary.
pub fn scrub_config(cfg: &mut Value, findings: &[Finding]) -> Vec<String> {
    let mut notes = Vec::new();
    let entries: BTreeSet<usize> = findings.iter().filter_map(|f| if let Place::History { index } = f.place { Some(index) } else { None }).collect();
    if let Some(hist) = cfg.get_mut("history").and_then(Value::as_array_mut) {
        for &i in &entries {
            let Some(h) = hist.get_mut(i).and_then(Value::as_object_mut) else { continue };
            for field in ["created_by", "comment"] {
                if let Some(Value::String(t)) = h.get_mut(field) {
                    let hits = rules::scan(t);
                    if !hits.is_empty() {
                        *t = rules::redact(t, &hits);
                    }
                }
            }
            notes.push(format!("secrets: history[{i}] redacted"));
        }
    }
    let keys: BTreeSet<&str> = findings.iter().filter_map(|f| if let Place::Env { key } = &f.place { Some(key.as_str()) } else { None }).collect();
    if let Some(env) = cfg.get_mut("config").and_then(|c| c.get_mut("Env")).and_then(Value::as_array_mut) {
        env.retain(|e| !e.as_str().and_then(|s| s.split_once('=')).is_some_and(|(k, _)| keys.contains(k)));
    }
    notes.extend(keys.iter().map(|k| format!("secrets: Env {k} removed (its value was a secret)")));
    notes
}

/// What happens to each finding in `slim`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub finding: Finding,
    /// `left` (in the output), `scrubbed`, `dropped by the plan`, `kept by --keep`.
    pub status: String,
}

pub const RULE: &str = "secret-file";

/// `slim`'s decisions: with `scrub`, secret files (and `.git` trees) leave the plan unless a
/// `--keep` glob named them; every finding gets its outcome. Returns the outcomes and the
/// plan changes.
pub fn plan_scrub(findings: &[Finding], plan: &Plan, scrub: bool) -> (Vec<Outcome>, BTreeMap<String, bool>) {
    let mut drop = BTreeMap::new();
    let outcomes = findings
        .iter()
        .map(|f| {
            let status = match &f.place {
                Place::File { path } => match plan.find(path) {
                    Some(e) if !e.keep => "dropped by the plan",
                    Some(e) if e.why.starts_with("--keep ") => "left (kept by --keep)",
                    Some(_) if scrub => {
                        let under = format!("{path}/");
                        for e in plan.entries.iter().filter(|e| e.path == *path || e.path.starts_with(&under)) {
                            drop.insert(e.path.clone(), false);
                        }
                        "scrubbed"
                    }
                    _ => "left",
                },
                _ if scrub => "scrubbed",
                _ => "left",
            };
            Outcome { finding: f.clone(), status: status.into() }
        })
        .collect();
    (outcomes, drop)
}

/// Make the plan drop the secret files `plan_scrub` chose.
pub fn overrule(plan: &mut Plan, drop: &BTreeMap<String, bool>) {
    let rule = RuleStat { name: RULE.into(), category: "secrets".into(), description: "secret files (--scrub-secrets)".into(), ..Default::default() };
    plan.overrule(drop, &rule, "secret file (--scrub-secrets)");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_findings_and_scrub() {
        let mut cfg = json!({
            "config": {"Env": ["PATH=/usr/bin", "NPM_TOKEN=npm_abcdefghijklmnopqrstuvwxyz0123456789", "DB_PASSWORD=hunter2", "GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D"]},
            "history": [
                {"created_by": "/bin/sh -c #(nop)  ENV PATH=/usr/bin", "empty_layer": true},
                {"created_by": "RUN |1 GITHUB_TOKEN=ghp_Zr4bQp1mX9aT7kLw3nV8cY2dF6hJ0sE5uG1i /bin/sh -c make"},
            ]
        });
        let f = scan_config(&cfg);
        let places: BTreeSet<String> = f.iter().map(|f| f.to_string().split(':').next().unwrap_or("").to_string()).collect();
        assert_eq!(places, ["Env DB_PASSWORD", "Env NPM_TOKEN", "history[1] created_by"].into_iter().map(String::from).collect());
        assert!(f.iter().all(|f| !f.to_string().contains("hunter2") && !f.to_string().contains("abcdefghij")));
        let notes = scrub_config(&mut cfg, &f);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(scan_config(&cfg).is_empty());
        assert_eq!(cfg["config"]["Env"], json!(["PATH=/usr/bin", "GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D"]));
        assert_eq!(cfg["history"][1]["created_by"], "RUN |1 GITHUB_TOKEN=[REDACTED] /bin/sh -c make");
        assert_eq!(cfg["history"][0]["empty_layer"], true);
    }
}
