//! What the tool tells the user: the summary printed after `slim`, the `--dry-run` plan, and
//! the full JSON report (every path with its decision and reason, every rule with its bytes).
pub mod ci;
pub mod diff;
pub mod html;
use crate::plan::Plan;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Sizes {
    pub uncompressed: u64,
    pub compressed: u64,
}

pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn ratio(before: u64, after: u64) -> String {
    if after == 0 {
        "-".into()
    } else {
        format!("{:.1}x", before as f64 / after as f64)
    }
}

/// The human summary. `after` is None for --dry-run (content bytes are shown instead).
pub fn summary(plan: &Plan, before: Sizes, after: Option<Sizes>, extra: &[String]) -> String {
    let mut s = String::new();
    let kept_files = plan.entries.iter().filter(|e| e.keep && e.kind != "dir").count();
    let dropped_files = plan.entries.iter().filter(|e| !e.keep && e.kind != "dir").count();
    let _ = writeln!(s, "level: {:?}", plan.level);
    // Many roots can share one label (every command on PATH of an interactive shell): one line.
    let mut by_label: Vec<(&str, Vec<&str>)> = Vec::new();
    for (p, l) in &plan.roots {
        match by_label.iter_mut().find(|(x, _)| *x == l.as_str()) {
            Some((_, v)) => v.push(p),
            None => by_label.push((l, vec![p])),
        }
    }
    for (l, paths) in by_label {
        if paths.len() > 3 {
            let _ = writeln!(s, "root: {} paths ({l}), e.g. {}", paths.len(), paths[..3].join(", "));
        } else {
            for p in paths {
                let _ = writeln!(s, "root: {p} ({l})");
            }
        }
    }
    for (n, why) in &plan.profiles {
        let why = why.strip_prefix(&format!("{n}: ")).unwrap_or(why);
        let _ = writeln!(s, "profile: {n}: {why}");
    }
    let _ = writeln!(
        s,
        "files: {kept_files} kept, {dropped_files} dropped; content {} kept, {} dropped",
        human(plan.bytes(true)),
        human(plan.bytes(false))
    );
    match after {
        Some(a) => {
            let _ = writeln!(
                s,
                "size: uncompressed {} -> {} ({}), compressed {} -> {} ({})",
                human(before.uncompressed),
                human(a.uncompressed),
                ratio(before.uncompressed, a.uncompressed),
                human(before.compressed),
                human(a.compressed),
                ratio(before.compressed, a.compressed)
            );
        }
        None => {
            let _ = writeln!(s, "size before: uncompressed {}, compressed {} (dry run: nothing written)", human(before.uncompressed), human(before.compressed));
        }
    }
    let mut by_cat: BTreeMap<String, u64> = BTreeMap::new();
    for r in &plan.rules {
        *by_cat.entry(r.category.clone()).or_default() += r.bytes;
    }
    let cats: Vec<String> = by_cat.iter().filter(|(_, b)| **b > 0).map(|(c, b)| format!("{c} {}", human(*b))).collect();
    if !cats.is_empty() {
        let _ = writeln!(s, "dropped by category: {}", cats.join(", "));
    }
    let _ = writeln!(s, "dropped by rule:");
    for r in plan.rules.iter().filter(|r| r.files > 0) {
        let _ = writeln!(s, "  {:>10}  {:>6} files  {:<22} {}", human(r.bytes), r.files, r.name, r.description);
    }
    let mut largest: Vec<_> = plan.entries.iter().filter(|e| e.keep && e.size > 0).collect();
    largest.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    let _ = writeln!(s, "largest kept files:");
    for e in largest.iter().take(10) {
        let _ = writeln!(s, "  {:>10}  {}  ({})", human(e.size), e.path, e.why);
    }
    for n in plan.notes.iter().chain(extra) {
        let _ = writeln!(s, "note: {n}");
    }
    for w in &plan.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s.push_str(&risks_block(plan));
    s
}

/// The risks, last: what may break the slimmed image, each with where and the fix.
pub fn risks_block(plan: &Plan) -> String {
    if plan.risks.is_empty() {
        return "risks: none\n".into();
    }
    let mut s = format!("risks ({}):\n", plan.risks.len());
    for r in &plan.risks {
        let _ = writeln!(s, "  {r}");
    }
    s
}

/// The `--report` JSON.
pub fn json_report(plan: &Plan, input: &str, before: Sizes, after: Option<Sizes>, extra: &[String]) -> serde_json::Value {
    json!({
        "input": input,
        "level": plan.level,
        "roots": plan.roots.iter().map(|(p, l)| json!({"path": p, "label": l})).collect::<Vec<_>>(),
        "profiles": plan.profiles.iter().map(|(n, w)| json!({"name": n, "why": w})).collect::<Vec<_>>(),
        "size_before": before,
        "size_after": after,
        "kept_bytes": plan.bytes(true),
        "dropped_bytes": plan.bytes(false),
        "rules": plan.rules,
        "notes": plan.notes.iter().chain(extra).collect::<Vec<_>>(),
        "warnings": plan.warnings,
        "risks": plan.risks,
        "paths": plan.entries,
    })
}
