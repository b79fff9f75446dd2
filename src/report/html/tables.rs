//! The page's tables, per mode.
use super::super::diff::{percent, signed, Diff};
use super::super::human;
use super::items::Item;
use super::{esc, Layer, Mode, Report};
use crate::plan::Plan;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Every table of the page's mode, then the layers, config and packages.
pub fn for_mode(s: &mut String, r: &Report, items: &[Item]) {
    match &r.mode {
        Mode::Slim(p) => {
            rules(s, p);
            largest(s, items, 0, "largest-kept", "Largest kept files");
            largest(s, items, 1, "largest-dropped", "Largest dropped files");
        }
        Mode::Inspect { .. } => largest(s, items, 1, "largest-wasted", "Largest wasted copies"),
        Mode::Diff(d) => {
            largest(s, items, 1, "largest-removed", "Largest removed files");
            largest(s, items, 2, "largest-added", "Largest added files");
            largest(s, items, 3, "largest-changed", "Largest changed files (A's size)");
            directories(s, d);
            config_changes(s, d);
        }
    }
    if !r.layers.is_empty() {
        layers(s, &r.layers);
    }
    if !matches!(r.mode, Mode::Diff(_)) {
        config(s, r.config_before, r.config_after);
    }
    if let Some(p) = r.packages {
        packages(s, p);
    }
    if let Mode::Slim(p) = &r.mode {
        findings(s, p, r);
    }
}

/// Directories (up to three levels deep) whose bytes differ, largest change first.
fn directories(s: &mut String, d: &Diff) {
    let mut dirs: Vec<&(String, u64, u64)> = d.dirs.iter().filter(|(p, _, _)| p != "/").collect();
    dirs.sort_by_key(|(p, a, b)| (std::cmp::Reverse((*b as i128 - *a as i128).abs()), p.clone()));
    let rows: Vec<Vec<String>> = dirs.iter().take(25).map(|(p, a, b)| vec![p.clone(), human(*a), human(*b), signed(*b as i128 - *a as i128), percent(*a, *b)]).collect();
    table(s, "directories", "Size by directory (A vs B, largest change first)", &["directory", "A", "B", "change", "%"], &rows);
}

fn config_changes(s: &mut String, d: &Diff) {
    let rows: Vec<Vec<String>> = d.config.iter().map(|(k, a, b)| vec![k.clone(), a.to_string(), b.to_string()]).collect();
    table(s, "config-changes", "Config changes", &["key", "A", "B"], &rows);
}

fn table(s: &mut String, id: &str, title: &str, head: &[&str], rows: &[Vec<String>]) {
    let _ = write!(s, "<section id=\"{id}\"><h2>{}</h2>", esc(title));
    if rows.is_empty() {
        s.push_str("<p>none</p></section>\n");
        return;
    }
    s.push_str("<table><thead><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            // Short cells (sizes, counts) never wrap; long ones (paths, reasons) may anywhere.
            let class = if c.chars().count() <= 12 { " class=\"n\"" } else { "" };
            let _ = write!(s, "<td{class}>{}</td>", esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></section>\n");
}

fn rules(s: &mut String, p: &Plan) {
    let rows: Vec<Vec<String>> = p
        .rules
        .iter()
        .filter(|r| r.files > 0)
        .map(|r| vec![r.name.clone(), r.category.clone(), r.files.to_string(), human(r.bytes), r.description.clone()])
        .collect();
    table(s, "rules", "Dropped by rule", &["rule", "category", "files", "bytes", "what it drops"], &rows);
    let mut by_cat: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in &p.rules {
        let c = by_cat.entry(&r.category).or_default();
        c.0 += r.files;
        c.1 += r.bytes;
    }
    let rows: Vec<Vec<String>> = by_cat.iter().filter(|(_, v)| v.0 > 0).map(|(c, v)| vec![c.to_string(), v.0.to_string(), human(v.1)]).collect();
    table(s, "categories", "Dropped by category", &["category", "files", "bytes"], &rows);
}

/// The 25 largest items of one class, with their notes.
fn largest(s: &mut String, items: &[Item], class: u8, id: &str, title: &str) {
    let mut v: Vec<&Item> = items.iter().filter(|i| i.class == class && i.size > 0).collect();
    v.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    let rows: Vec<Vec<String>> = v.iter().take(25).map(|i| vec![human(i.size), i.path.clone(), i.note.clone()]).collect();
    table(s, id, title, &["size", "path", "why"], &rows);
}

fn layers(s: &mut String, layers: &[Layer]) {
    let rows: Vec<Vec<String>> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| vec![i.to_string(), l.name.clone(), human(l.compressed), human(l.uncompressed), l.files.to_string(), l.whiteouts.to_string(), human(l.wasted)])
        .collect();
    table(s, "layers", "Layers of the input", &["#", "layer", "compressed", "uncompressed", "files", "whiteouts", "wasted (lower bytes it deletes or replaces)"], &rows);
}

const CONFIG_FIELDS: [&str; 8] = ["Entrypoint", "Cmd", "User", "WorkingDir", "Env", "ExposedPorts", "Volumes", "Labels"];

fn config(s: &mut String, before: &Value, after: Option<&Value>) {
    let field = |c: &Value, f: &str| c.get("config").and_then(|c| c.get(f)).filter(|v| !v.is_null()).map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = CONFIG_FIELDS
        .iter()
        .map(|f| {
            let mut row = vec![f.to_string(), field(before, f)];
            if let Some(a) = after {
                let av = field(a, f);
                row.push(if av == row[1] { "(same)".into() } else { av });
            }
            row
        })
        .collect();
    let head: &[&str] = if after.is_some() { &["field", "before", "after"] } else { &["field", "value"] };
    table(s, "config", "Config", head, &rows);
}

fn packages(s: &mut String, p: &Value) {
    let get = |v: &Value, k: &str| v.get(k).map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).unwrap_or_default();
    let bytes = |v: &Value, k: &str| human(v.get(k).and_then(Value::as_u64).unwrap_or(0));
    let rows: Vec<Vec<String>> = p
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| vec![get(v, "name"), get(v, "version"), get(v, "files_kept"), get(v, "files_dropped"), bytes(v, "bytes_kept"), bytes(v, "bytes_dropped"), get(v, "removed")])
                .collect()
        })
        .unwrap_or_default();
    table(s, "packages", "By package", &["package", "version", "files kept", "files dropped", "bytes kept", "bytes dropped", "removed"], &rows);
}

fn findings(s: &mut String, p: &Plan, r: &Report) {
    let rows: Vec<Vec<String>> = p.risks.iter().map(|k| vec![k.kind.to_string(), k.at.clone(), k.what.clone(), k.fix.clone()]).collect();
    table(s, "risks", "Risks", &["kind", "where", "what", "fix"], &rows);
    let rows: Vec<Vec<String>> = p.warnings.iter().map(|w| vec![w.clone()]).collect();
    table(s, "warnings", "Warnings", &["warning"], &rows);
    let rows: Vec<Vec<String>> = p.notes.iter().chain(r.notes).map(|n| vec![n.clone()]).collect();
    table(s, "notes", "Notes", &["note"], &rows);
}

