//! What the tool tells the user: the summary printed after `slim`, the `--dry-run` plan, and
//! the full JSON report (every path with its decision and reason, every rule with its bytes).
pub mod ci;
pub mod diff;
pub mod html;
pub mod summary;
use crate::plan::Plan;
use serde_json::json;
pub use summary::{summary, Accounting, After};

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

/// Version of the JSON documents (`--report`, `--json`); bumped when a field changes meaning.
pub const SCHEMA: u32 = 1;

/// `slim --json`: the result without the per-path plan (that is `--report`'s).
pub fn result_json(plan: &Plan, input: &str, acc: &Accounting, extra: &[String]) -> serde_json::Value {
    let files = |keep: bool| plan.entries.iter().filter(|e| e.keep == keep && e.kind != "dir").count();
    let mut v = json_report(plan, input, acc, extra);
    if let Some(o) = v.as_object_mut() {
        o.remove("paths");
        o.insert("command".into(), json!("slim"));
        o.insert("files_kept".into(), json!(files(true)));
        o.insert("files_dropped".into(), json!(files(false)));
        o.insert("rules".into(), json!(plan.rules.iter().filter(|r| r.files > 0).collect::<Vec<_>>()));
    }
    v
}

/// The `--report` JSON: the plan, the sizes and the waterfall (exact bytes).
pub fn json_report(plan: &Plan, input: &str, acc: &Accounting, extra: &[String]) -> serde_json::Value {
    let waterfall = summary::waterfall(plan, acc).map(|(before, steps, after)| json!({"before": before, "steps": steps, "after": after}));
    json!({
        "schema": SCHEMA,
        "input": input,
        "level": plan.level,
        "roots": plan.roots.iter().map(|(p, l)| json!({"path": p, "label": l})).collect::<Vec<_>>(),
        "profiles": plan.profiles.iter().map(|(n, w)| json!({"name": n, "why": w})).collect::<Vec<_>>(),
        "size_before": acc.before,
        // A dry run counts the tar and compresses nothing: no compressed size.
        "size_after": acc.after.as_ref().map(|a| json!({"uncompressed": a.uncompressed, "compressed": a.stored})),
        "dry_run": acc.after.as_ref().is_some_and(|a| a.dry_run),
        "waterfall": waterfall,
        "kept_bytes": plan.bytes(true),
        "dropped_bytes": plan.bytes(false),
        "rules": plan.rules,
        "notes": plan.notes.iter().chain(extra).collect::<Vec<_>>(),
        "warnings": plan.warnings,
        "risks": plan.risks,
        "paths": plan.entries,
    })
}
