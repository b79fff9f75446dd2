//! `--html`: one self-contained offline page built from the data of the JSON `--report` (the
//! plan's entries, rules, warnings and risks) plus the layers and the configs: a treemap of
//! the original image coloured kept/dropped with drill-down by directory, tables, a search box
//! over paths and a before/after size bar. The treemap is laid out here (squarified, one SVG
//! per directory); the inline script only switches views, draws the breadcrumb and searches.
//! Every string from the image goes through `esc` (markup) or `json_for_script` (data): image
//! paths are hostile, a `<script>` in a file name must stay text.
use super::{human, Sizes};
use crate::plan::{Entry, Plan};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const STYLE: &str = include_str!("html.css");
const SCRIPT: &str = include_str!("html.js");
/// The treemap's drawing area (SVG user units; the page scales it to its width).
const W: f64 = 1200.0;
const H: f64 = 600.0;
/// Cells drawn per directory view; smaller entries are one "… more" cell (search finds them).
const MAX_CELLS: usize = 150;
/// Every entry costs a tar header: weighting by it keeps empty files, symlinks and empty
/// directories visible (and true to the layer's size).
const HEADER: u64 = 512;

/// One layer of the input, as `inspect` lists it.
pub struct Layer {
    pub name: String,
    pub compressed: u64,
    pub uncompressed: u64,
    pub files: usize,
    pub whiteouts: usize,
    /// Bytes of lower layers this layer deleted or replaced.
    pub wasted: u64,
}

/// What the page shows. `plan` is None for `inspect` (nothing decided: the treemap is neutral).
pub struct Report<'a> {
    pub input: &'a str,
    pub entries: &'a [Entry],
    pub plan: Option<&'a Plan>,
    pub notes: &'a [String],
    pub layers: Vec<Layer>,
    pub config_before: &'a Value,
    pub config_after: Option<&'a Value>,
    pub before: Sizes,
    pub after: Option<Sizes>,
    /// `pkgdb` package use (JSON array of PackageUse), when there is a package database.
    pub packages: Option<&'a Value>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// Squarified treemap (Bruls, Huizing, van Wijk): lay `weights` (sorted largest first) out in
/// `r`, each rectangle's area proportional to its weight, rows chosen to keep aspect ratios
/// near 1. Zero weights get empty rectangles.
pub fn squarify(weights: &[f64], r: Rect) -> Vec<Rect> {
    let total: f64 = weights.iter().sum();
    if weights.is_empty() || total <= 0.0 || r.w <= 0.0 || r.h <= 0.0 {
        return weights.iter().map(|_| Rect { x: r.x, y: r.y, w: 0.0, h: 0.0 }).collect();
    }
    let scale = r.w * r.h / total;
    let areas: Vec<f64> = weights.iter().map(|w| w * scale).collect();
    let mut out = Vec::with_capacity(areas.len());
    let (mut free, mut i) = (r, 0);
    while i < areas.len() {
        let side = free.w.min(free.h);
        let mut end = i + 1;
        while end < areas.len() && worst(&areas[i..=end], side) <= worst(&areas[i..end], side) {
            end += 1;
        }
        free = lay_row(&areas[i..end], free, &mut out);
        i = end;
    }
    out
}

/// The worst aspect ratio of a row of `areas` laid along a side of length `side`.
fn worst(areas: &[f64], side: f64) -> f64 {
    let s: f64 = areas.iter().sum();
    let (max, min) = areas.iter().fold((0f64, f64::MAX), |(a, b), &x| (a.max(x), b.min(x)));
    if s <= 0.0 || min <= 0.0 {
        return f64::MAX;
    }
    let s2 = s * s;
    let side2 = side * side;
    (side2 * max / s2).max(s2 / (side2 * min))
}

/// Place one row along the shorter side of `free`; return what is left.
fn lay_row(areas: &[f64], free: Rect, out: &mut Vec<Rect>) -> Rect {
    let s: f64 = areas.iter().sum();
    if free.w >= free.h {
        let w = if free.h > 0.0 { s / free.h } else { 0.0 };
        let mut y = free.y;
        for a in areas {
            let h = if w > 0.0 { a / w } else { 0.0 };
            out.push(Rect { x: free.x, y, w, h });
            y += h;
        }
        Rect { x: free.x + w, y: free.y, w: (free.w - w).max(0.0), h: free.h }
    } else {
        let h = if free.w > 0.0 { s / free.w } else { 0.0 };
        let mut x = free.x;
        for a in areas {
            let w = if h > 0.0 { a / h } else { 0.0 };
            out.push(Rect { x, y: free.y, w, h });
            x += w;
        }
        Rect { x: free.x, y: free.y + h, w: free.w, h: (free.h - h).max(0.0) }
    }
}

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// JSON safe inside a `<script>` element: `<`, `>` and `&` only occur inside strings, where
/// their \u escapes mean the same, so `</script>` in a path cannot close the element.
fn json_for_script(v: &Value) -> String {
    v.to_string().replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

/// The directory tree of the original image, for the treemap.
struct Node {
    path: String,
    name: String,
    entry: Option<usize>,
    weight: u64,
    kept: u64,
    children: BTreeMap<String, usize>,
}

struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn build(entries: &[Entry], decided: bool) -> Tree {
        let mut t = Tree { nodes: vec![Node { path: "/".into(), name: "/".into(), entry: None, weight: 0, kept: 0, children: BTreeMap::new() }] };
        for (i, e) in entries.iter().enumerate() {
            let id = t.node_for(&e.path);
            t.nodes[id].entry = Some(i);
            let w = e.size + HEADER;
            let kept = if e.keep || !decided { w } else { 0 };
            // Every ancestor (and the node itself) carries the entry's weight.
            let mut p = e.path.trim_matches('/').to_string();
            loop {
                let id = t.node_for(&p);
                t.nodes[id].weight += w;
                t.nodes[id].kept += kept;
                if p.is_empty() {
                    break;
                }
                p = p.rsplit_once('/').map(|(a, _)| a.to_string()).unwrap_or_default();
            }
        }
        t
    }

    /// The node of a path, created with its parents as needed.
    fn node_for(&mut self, path: &str) -> usize {
        let mut id = 0;
        let mut acc = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            acc.push('/');
            acc.push_str(part);
            id = match self.nodes[id].children.get(part) {
                Some(c) => *c,
                None => {
                    let c = self.nodes.len();
                    self.nodes.push(Node { path: acc.clone(), name: part.into(), entry: None, weight: 0, kept: 0, children: BTreeMap::new() });
                    self.nodes[id].children.insert(part.into(), c);
                    c
                }
            };
        }
        id
    }
}

/// Render the page.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let title = format!("imgslim: {}", r.input);
    let _ = write!(s, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n", esc(&title));
    let _ = writeln!(s, "<h1>{}</h1>", esc(&title));
    size_bar(&mut s, r);
    treemap(&mut s, r);
    search_box(&mut s, r);
    if let Some(p) = r.plan {
        rules(&mut s, p);
        largest(&mut s, r.entries, true);
        largest(&mut s, r.entries, false);
    }
    layers(&mut s, &r.layers);
    config(&mut s, r.config_before, r.config_after);
    if let Some(p) = r.packages {
        packages(&mut s, p);
    }
    findings(&mut s, r);
    let _ = write!(s, "<script>{SCRIPT}</script>\n</body></html>\n");
    s
}

fn size_bar(s: &mut String, r: &Report) {
    s.push_str("<section id=\"sizes\"><h2>Size</h2>");
    let rows: [(&str, u64, Option<u64>); 2] =
        [("uncompressed", r.before.uncompressed, r.after.map(|a| a.uncompressed)), ("compressed", r.before.compressed, r.after.map(|a| a.compressed))];
    for (what, b, a) in rows {
        let _ = write!(s, "<div class=\"bar\"><span class=\"lbl\">{what} before</span><span class=\"fill before\" style=\"width:60%\"></span><span>{}</span></div>", human(b));
        if let Some(a) = a {
            let pct = if b == 0 { 0.0 } else { 60.0 * a as f64 / b as f64 };
            let change = if b == 0 { String::new() } else { format!(" ({:+.1}%)", (a as f64 / b as f64 - 1.0) * 100.0) };
            let _ = write!(s, "<div class=\"bar\"><span class=\"lbl\">{what} after</span><span class=\"fill after\" style=\"width:{:.2}%\"></span><span>{}{change}</span></div>", pct.min(100.0), human(a));
        }
    }
    if let Some(p) = r.plan {
        // The summary's line, from the same plan.
        let files = |keep: bool| p.entries.iter().filter(|e| e.keep == keep && e.kind != "dir").count();
        let _ = write!(
            s,
            "<p id=\"content\">files: {} kept, {} dropped; content {} kept, {} dropped</p>",
            files(true),
            files(false),
            human(p.bytes(true)),
            human(p.bytes(false))
        );
    }
    s.push_str("</section>\n");
}

fn treemap(s: &mut String, r: &Report) {
    let decided = r.plan.is_some();
    let t = Tree::build(r.entries, decided);
    s.push_str("<section id=\"treemap\"><h2>Treemap of the original image</h2>");
    s.push_str(if decided {
        "<p class=\"legend\"><span class=\"sw kept\"></span>kept <span class=\"sw dropped\"></span>dropped; directories shade from red to green by the share kept. Click a directory to open it; hover for details.</p>"
    } else {
        "<p class=\"legend\">Area is bytes (content plus a 512-byte tar header per entry). Click a directory to open it; hover for details.</p>"
    });
    s.push_str("<nav id=\"crumbs\"></nav><output id=\"tm-status\"></output>\n");
    let mut queue = vec![0usize];
    while let Some(id) = queue.pop() {
        let drawn = view(s, &t, id, r.entries, decided);
        queue.extend(drawn.into_iter().rev());
    }
    s.push_str("</section>\n");
}

/// One directory's view; returns the child directories drawn (each gets its own view).
fn view(s: &mut String, t: &Tree, id: usize, entries: &[Entry], decided: bool) -> Vec<usize> {
    let node = &t.nodes[id];
    let mut kids: Vec<usize> = node.children.values().copied().collect();
    kids.sort_by(|a, b| t.nodes[*b].weight.cmp(&t.nodes[*a].weight).then(t.nodes[*a].name.cmp(&t.nodes[*b].name)));
    let rest: Vec<usize> = if kids.len() > MAX_CELLS { kids.split_off(MAX_CELLS - 1) } else { Vec::new() };
    let mut weights: Vec<f64> = kids.iter().map(|k| t.nodes[*k].weight as f64).collect();
    if !rest.is_empty() {
        weights.push(rest.iter().map(|k| t.nodes[*k].weight as f64).sum());
    }
    let rects = squarify(&weights, Rect { x: 0.0, y: 0.0, w: W, h: H });
    let _ = write!(s, "<svg class=\"tm\" data-dir=\"{}\" viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\">", esc(&node.path));
    let mut dirs = Vec::new();
    for (k, rc) in kids.iter().zip(&rects) {
        let n = &t.nodes[*k];
        let is_dir = !n.children.is_empty() || n.entry.is_some_and(|e| entries[e].kind == "dir");
        let (fill, tip) = describe(n, n.entry.map(|e| &entries[e]), decided);
        let drill = if n.children.is_empty() { String::new() } else { format!(" data-dir=\"{}\"", esc(&n.path)) };
        let _ = write!(s, "<g><rect class=\"cell\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"{drill}><title>{}</title></rect>", rc.x, rc.y, rc.w, rc.h, esc(&tip));
        label(s, rc, &format!("{}{}", n.name, if is_dir { "/" } else { "" }));
        s.push_str("</g>");
        if !n.children.is_empty() {
            dirs.push(*k);
        }
    }
    if let (false, Some(rc)) = (rest.is_empty(), rects.last()) {
        let bytes: u64 = rest.iter().map(|k| t.nodes[*k].weight).sum();
        let tip = format!("{} more entries, {} (use the search box)", rest.len(), human(bytes));
        let _ = write!(s, "<g><rect class=\"cell more\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#b0bec5\"><title>{}</title></rect>", rc.x, rc.y, rc.w, rc.h, esc(&tip));
        label(s, rc, &format!("… {} more", rest.len()));
        s.push_str("</g>");
    }
    s.push_str("</svg>\n");
    dirs
}

fn label(s: &mut String, rc: &Rect, text: &str) {
    if rc.w < 40.0 || rc.h < 16.0 {
        return;
    }
    let max = (rc.w / 7.5) as usize;
    let shown: String = if text.chars().count() > max { text.chars().take(max.saturating_sub(1)).chain(['…']).collect() } else { text.to_string() };
    let _ = write!(s, "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>", rc.x + 3.0, rc.y + 13.0, esc(&shown));
}

/// A cell's colour and hover text.
fn describe(n: &Node, e: Option<&Entry>, decided: bool) -> (String, String) {
    let size = n.weight.saturating_sub(HEADER * n.children.len() as u64);
    if !n.children.is_empty() {
        let share = if n.weight == 0 { 1.0 } else { n.kept as f64 / n.weight as f64 };
        let dir_why = e.map(|e| format!("; the directory: {}", decision(e, decided))).unwrap_or_default();
        if !decided {
            return ("#90a4ae".into(), format!("{}/\n{} in {} entries", n.path, human(size), n.children.len()));
        }
        let fill = format!("hsl({:.0},55%,55%)", share * 120.0);
        return (fill, format!("{}/\n{} ({:.0}% kept by bytes){dir_why}", n.path, human(n.weight), share * 100.0));
    }
    let Some(e) = e else { return ("#b0bec5".into(), n.path.clone()) };
    let fill = if !decided {
        "#90a4ae"
    } else if e.keep {
        "#66bb6a"
    } else {
        "#ef5350"
    };
    (fill.into(), format!("{} ({})\n{}\n{}", e.path, e.kind, human(e.size), decision(e, decided)))
}

fn decision(e: &Entry, decided: bool) -> String {
    match (decided, e.keep, &e.rule) {
        (false, _, _) => "in the image".into(),
        (true, true, _) => format!("kept: {}", e.why),
        (true, false, Some(rule)) if e.why.is_empty() || e.why == *rule => format!("dropped by {rule}"),
        (true, false, Some(rule)) => format!("dropped by {rule}: {}", e.why),
        (true, false, None) => format!("dropped: {}", e.why),
    }
}

fn search_box(s: &mut String, r: &Report) {
    let decided = r.plan.is_some();
    let rows: Vec<Value> = r
        .entries
        .iter()
        .map(|e| Value::Array(vec![e.path.clone().into(), e.size.into(), e.kind.into(), decision(e, decided).into()]))
        .collect();
    s.push_str("<section id=\"search\"><h2>Search paths</h2><input id=\"q\" type=\"search\" placeholder=\"part of a path, e.g. bin/sh\" autocomplete=\"off\"> <output id=\"q-count\"></output><ol id=\"results\"></ol>");
    let _ = writeln!(s, "<script type=\"application/json\" id=\"paths\">{}</script></section>", json_for_script(&Value::Array(rows)));
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

fn largest(s: &mut String, entries: &[Entry], kept: bool) {
    let mut v: Vec<&Entry> = entries.iter().filter(|e| e.keep == kept && e.size > 0).collect();
    v.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    let rows: Vec<Vec<String>> = v.iter().take(25).map(|e| vec![human(e.size), e.path.clone(), decision(e, true)]).collect();
    let (id, title) = if kept { ("largest-kept", "Largest kept files") } else { ("largest-dropped", "Largest dropped files") };
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

fn findings(s: &mut String, r: &Report) {
    let Some(p) = r.plan else { return };
    let rows: Vec<Vec<String>> = p.risks.iter().map(|k| vec![k.kind.to_string(), k.at.clone(), k.what.clone(), k.fix.clone()]).collect();
    table(s, "risks", "Risks", &["kind", "where", "what", "fix"], &rows);
    let rows: Vec<Vec<String>> = p.warnings.iter().map(|w| vec![w.clone()]).collect();
    table(s, "warnings", "Warnings", &["warning"], &rows);
    let rows: Vec<Vec<String>> = p.notes.iter().chain(r.notes).map(|n| vec![n.clone()]).collect();
    table(s, "notes", "Notes", &["note"], &rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Rect = Rect { x: 0.0, y: 0.0, w: 600.0, h: 400.0 };

    fn area(r: &Rect) -> f64 {
        r.w * r.h
    }

    #[test]
    fn areas_are_proportional_and_tile_the_rectangle() {
        let w = [6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0];
        let rs = squarify(&w, R);
        assert_eq!(rs.len(), w.len());
        let total: f64 = w.iter().sum();
        for (wi, r) in w.iter().zip(&rs) {
            assert!((area(r) - wi / total * area(&R)).abs() < 1e-6, "{r:?} for weight {wi}");
            assert!(r.x >= -1e-9 && r.y >= -1e-9 && r.x + r.w <= R.w + 1e-6 && r.y + r.h <= R.h + 1e-6, "{r:?} outside");
        }
        // No two rectangles overlap.
        for (i, a) in rs.iter().enumerate() {
            for b in &rs[i + 1..] {
                let ox = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
                let oy = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
                assert!(ox <= 1e-6 || oy <= 1e-6, "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn the_paper_example_gives_near_square_cells() {
        // Bruls et al.'s example: 6,6,4,3,2,2,1 in a 6x4 rectangle; the first row is 6,6 on the short side.
        let rs = squarify(&[6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0], Rect { x: 0.0, y: 0.0, w: 6.0, h: 4.0 });
        assert!((rs[0].w - 3.0).abs() < 1e-9 && (rs[0].h - 2.0).abs() < 1e-9, "{:?}", rs[0]);
        assert!((rs[1].y - 2.0).abs() < 1e-9, "{:?}", rs[1]);
        let worst = rs.iter().map(|r| (r.w / r.h).max(r.h / r.w)).fold(0.0, f64::max);
        assert!(worst < 3.0, "worst aspect {worst}");
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        assert!(squarify(&[], R).is_empty());
        assert_eq!(squarify(&[0.0, 0.0], R).iter().map(area).sum::<f64>(), 0.0);
        let one = squarify(&[5.0], R);
        assert!((area(&one[0]) - area(&R)).abs() < 1e-6);
    }

    fn entry(path: &str, size: u64, keep: bool) -> Entry {
        Entry { path: path.into(), raw: path.as_bytes().to_vec(), kind: if size == 0 { "dir" } else { "file" }, size, keep, why: "test".into(), rule: None, category: None, via: None, inode: None }
    }

    #[test]
    fn hostile_paths_stay_text() {
        let evil = "/</script><script>alert(1)</script><img src=x onerror=alert(2)>\"'&";
        let entries = vec![entry("/bin", 0, true), entry("/bin/sh", 10, true), entry(evil, 100, false)];
        let cfg = serde_json::json!({"config": {"Cmd": ["</script><b>x"]}});
        let html = render(&Report {
            input: "<script>alert(3)</script>",
            entries: &entries,
            plan: None,
            notes: &[],
            layers: vec![],
            config_before: &cfg,
            config_after: None,
            before: Sizes::default(),
            after: None,
            packages: None,
        });
        for bad in ["<script>alert", "<img", "</script><b>", "onerror=alert(2)>\""] {
            assert!(!html.contains(bad), "{bad} must be escaped");
        }
        // One script for data, one for code: nothing from the image opened another.
        assert_eq!(html.matches("<script").count(), 2);
        assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
    }

    #[test]
    fn every_top_level_entry_is_a_cell_and_directories_get_views() {
        let entries = vec![entry("/bin", 0, true), entry("/bin/sh", 1000, true), entry("/tmp", 0, false), entry("/etc", 0, true), entry("/etc/x", 5, false)];
        let mut s = String::new();
        let t = Tree::build(&entries, true);
        let dirs = view(&mut s, &t, 0, &entries, true);
        assert_eq!(s.matches("class=\"cell\"").count(), 3, "{s}");
        assert_eq!(dirs.len(), 2, "bin and etc have children; tmp is empty");
        assert!(s.contains("data-dir=\"/bin\""));
    }
}
