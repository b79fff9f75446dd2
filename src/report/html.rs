//! `--html`: one self-contained offline page. For `slim` it is built from the data of the JSON
//! `--report` (the plan's entries, rules, warnings and risks) plus the layers and the configs;
//! for `inspect` from the merged tree and the layers' hidden copies; for `diff` from the
//! comparison. Each mode (`items::Mode`) turns its data into one list of items with a legend;
//! the treemap (drill-down by directory), the search box over paths and the "largest" tables
//! all read that list, and a size bar compares before/after (or A/B). The treemap is laid out
//! here (squarified, one SVG per directory); the inline script only switches views, draws the
//! breadcrumb and searches. Every string from the image goes through `esc` (markup) or
//! `json_for_script` (data): image paths are hostile, a `<script>` in a file name must stay text.
mod items;
mod squarify;
mod tables;

pub use items::Mode;
pub use squarify::{squarify, Rect};

use super::{human, Sizes};
use crate::plan::Entry;
use items::{Class, Item};
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
/// Classes per legend, at most (the diff mode has four).
const CLASSES: usize = 4;

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

/// What the page shows. `entries` is the merged tree (slim: with the plan's decisions).
pub struct Report<'a> {
    pub input: &'a str,
    pub mode: Mode<'a>,
    pub entries: &'a [Entry],
    pub notes: &'a [String],
    pub layers: Vec<Layer>,
    pub config_before: &'a Value,
    pub config_after: Option<&'a Value>,
    pub before: Sizes,
    pub after: Option<Sizes>,
    /// `pkgdb` package use (JSON array of PackageUse), when there is a package database.
    pub packages: Option<&'a Value>,
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

/// The directory tree of the items, for the treemap.
struct Node {
    path: String,
    name: String,
    /// The items at exactly this path (inspect: a live file and its hidden copies).
    items: Vec<usize>,
    weight: u64,
    /// Weight by legend class.
    by_class: [u64; CLASSES],
    children: BTreeMap<String, usize>,
}

impl Node {
    fn new(path: String, name: String) -> Node {
        Node { path, name, items: Vec::new(), weight: 0, by_class: [0; CLASSES], children: BTreeMap::new() }
    }

    /// The class holding most of the node's bytes (the cell's `data-class`).
    fn dominant(&self) -> usize {
        (0..CLASSES).rev().max_by_key(|&c| self.by_class[c]).unwrap_or(0)
    }
}

struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn build(items: &[Item]) -> Tree {
        let mut t = Tree { nodes: vec![Node::new("/".into(), "/".into())] };
        for (i, it) in items.iter().enumerate() {
            let id = t.node_for(&it.path);
            t.nodes[id].items.push(i);
            let w = it.size + HEADER;
            // Every ancestor (and the node itself) carries the item's weight.
            let mut p = it.path.trim_matches('/').to_string();
            loop {
                let id = t.node_for(&p);
                t.nodes[id].weight += w;
                t.nodes[id].by_class[usize::from(it.class).min(CLASSES - 1)] += w;
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
                    self.nodes.push(Node::new(acc.clone(), part.into()));
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
    let items = r.mode.items(r.entries);
    size_bar(&mut s, r);
    summary_line(&mut s, r, &items);
    treemap(&mut s, &r.mode, &items);
    search_box(&mut s, r.mode.legend(), &items);
    tables::for_mode(&mut s, r, &items);
    let _ = write!(s, "<script>{SCRIPT}</script>\n</body></html>\n");
    s
}

/// The size bar's two sides: before/after, or A/B for a diff.
fn sides(mode: &Mode) -> (&'static str, &'static str) {
    match mode {
        Mode::Diff(_) => ("A", "B"),
        _ => ("before", "after"),
    }
}

/// Before and after (A and B) as bars, the second one scaled to the first. A larger result is
/// growth: it is drawn in its own colour and labelled as such, never like a saving.
fn size_bar(s: &mut String, r: &Report) {
    s.push_str("<section id=\"sizes\"><h2>Size</h2>");
    let (one, two) = sides(&r.mode);
    let rows: [(&str, u64, Option<u64>); 2] =
        [("uncompressed", r.before.uncompressed, r.after.map(|a| a.uncompressed)), ("compressed", r.before.compressed, r.after.map(|a| a.compressed))];
    for (what, b, a) in rows {
        let _ = write!(s, "<div class=\"bar\" data-what=\"{what}\" data-side=\"{one}\" data-bytes=\"{b}\"><span class=\"lbl\">{what} {one}</span><span class=\"fill before\" style=\"width:60%\"></span><span>{}</span></div>", human(b));
        if let Some(a) = a {
            let pct = if b == 0 { 0.0 } else { 60.0 * a as f64 / b as f64 };
            let (class, change) = change_label(b, a);
            let _ = write!(
                s,
                "<div class=\"bar\" data-what=\"{what}\" data-side=\"{two}\" data-bytes=\"{a}\"><span class=\"lbl\">{what} {two}</span><span class=\"fill {class}\" style=\"width:{:.2}%\"></span><span>{}{change}</span></div>",
                pct.min(100.0),
                human(a)
            );
        }
    }
    s.push_str("</section>\n");
}

/// The second bar's class (`smaller`, `grown`, `same`) and its label, e.g. ` (+2.6%, larger)`.
fn change_label(before: u64, after: u64) -> (&'static str, String) {
    let pct = if before == 0 { String::new() } else { format!("{:+.1}%", (after as f64 / before as f64 - 1.0) * 100.0) };
    match after.cmp(&before) {
        std::cmp::Ordering::Less => ("smaller", format!(" ({pct}, smaller)")),
        std::cmp::Ordering::Greater if before == 0 => ("grown", " (larger)".into()),
        std::cmp::Ordering::Greater => ("grown", format!(" ({pct}, larger)")),
        std::cmp::Ordering::Equal => ("same", " (same size)".into()),
    }
}

/// One line of counts under the bar, per mode.
fn summary_line(s: &mut String, r: &Report, items: &[Item]) {
    let count = |c: u8| items.iter().filter(|i| i.class == c && i.kind != "dir").count();
    let bytes = |c: u8| items.iter().filter(|i| i.class == c).map(|i| i.size).sum::<u64>();
    match &r.mode {
        Mode::Slim(p) => {
            // The summary's line, from the same plan.
            let _ = writeln!(s, "<p id=\"content\">files: {} kept, {} dropped; content {} kept, {} dropped</p>", count(0), count(1), human(p.bytes(true)), human(p.bytes(false)));
        }
        Mode::Inspect { .. } => {
            let _ = writeln!(s, "<p id=\"content\">live: {} files, {}; wasted: {} hidden copies, {} (overwritten or deleted by upper layers)</p>", count(0), human(bytes(0)), count(1), human(bytes(1)));
        }
        Mode::Diff(d) => {
            let (a, b) = d.bytes;
            let _ = writeln!(
                s,
                "<p id=\"counts\" data-added=\"{}\" data-removed=\"{}\" data-changed=\"{}\" data-same=\"{}\">paths: {} added, {} removed, {} changed, {} unchanged; content {} → {} ({})</p>",
                d.added.len(), d.removed.len(), d.changed.len(), d.same.len(),
                d.added.len(), d.removed.len(), d.changed.len(), d.same.len(),
                human(a), human(b), super::diff::percent(a, b)
            );
        }
    }
}

fn treemap(s: &mut String, mode: &Mode, items: &[Item]) {
    let t = Tree::build(items);
    let legend = mode.legend();
    let _ = write!(s, "<section id=\"treemap\"><h2>{}</h2><p class=\"legend\">", mode.title());
    for c in legend {
        let _ = write!(s, "<span class=\"sw\" style=\"background:{}\"></span>{} ", c.colour, c.name);
    }
    let _ = write!(s, "<br>{} Directories blend their entries' colours by bytes. Click a directory to open it; hover for details.</p>", mode.explain());
    s.push_str("<nav id=\"crumbs\"></nav><output id=\"tm-status\"></output>\n");
    let mut queue = vec![0usize];
    while let Some(id) = queue.pop() {
        let drawn = view(s, &t, id, items, legend);
        queue.extend(drawn.into_iter().rev());
    }
    s.push_str("</section>\n");
}

/// One directory's view; returns the child directories drawn (each gets its own view).
fn view(s: &mut String, t: &Tree, id: usize, items: &[Item], legend: &[Class]) -> Vec<usize> {
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
        let is_dir = !n.children.is_empty() || n.items.iter().any(|&i| items[i].kind == "dir");
        let tip = describe(n, items, legend);
        let drill = if n.children.is_empty() { String::new() } else { format!(" data-dir=\"{}\"", esc(&n.path)) };
        let class = legend.get(n.dominant()).map_or("", |c| c.name);
        let _ = write!(
            s,
            "<g><rect class=\"cell\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" data-class=\"{class}\"{drill}><title>{}</title></rect>",
            rc.x, rc.y, rc.w, rc.h, blend(&n.by_class, legend), esc(&tip)
        );
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

/// The legend's colours mixed by bytes: one class gives its own colour.
fn blend(by_class: &[u64; CLASSES], legend: &[Class]) -> String {
    let total: u64 = by_class.iter().sum();
    let mut rgb = [0f64; 3];
    for (c, &w) in legend.iter().zip(by_class) {
        let hex = u32::from_str_radix(c.colour.trim_start_matches('#'), 16).unwrap_or(0);
        for (k, v) in rgb.iter_mut().enumerate() {
            let channel = f64::from((hex >> (16 - 8 * k)) & 0xff);
            *v += channel * if total == 0 { 0.0 } else { w as f64 / total as f64 };
        }
    }
    format!("#{:02x}{:02x}{:02x}", rgb[0].round() as u8, rgb[1].round() as u8, rgb[2].round() as u8)
}

/// A cell's hover text: a directory's size and share by class, or each item at a leaf.
fn describe(n: &Node, items: &[Item], legend: &[Class]) -> String {
    let notes: Vec<String> = n.items.iter().map(|&i| &items[i]).map(|it| format!("{} ({})\n{}\n{}", it.path, it.kind, human(it.size), it.note)).collect();
    if n.children.is_empty() {
        return if notes.is_empty() { n.path.clone() } else { notes.join("\n") };
    }
    let shares: Vec<String> = legend
        .iter()
        .zip(&n.by_class)
        .filter(|(_, w)| **w > 0)
        .map(|(c, w)| format!("{:.0}% {}", *w as f64 * 100.0 / n.weight.max(1) as f64, c.name))
        .collect();
    let dir_why = n.items.iter().map(|&i| format!("; the directory: {}", items[i].note)).collect::<String>();
    format!("{}/\n{} in {} entries ({} by bytes){dir_why}", n.path, human(n.weight), n.children.len(), shares.join(", "))
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

/// Every item as a search row: path, size, kind, note, class name.
fn search_box(s: &mut String, legend: &[Class], items: &[Item]) {
    let rows: Vec<Value> = items
        .iter()
        .map(|it| {
            let class = legend.get(usize::from(it.class)).map_or("", |c| c.name);
            Value::Array(vec![it.path.clone().into(), it.size.into(), it.kind.into(), it.note.clone().into(), class.into()])
        })
        .collect();
    s.push_str("<section id=\"search\"><h2>Search paths</h2><input id=\"q\" type=\"search\" placeholder=\"part of a path, e.g. bin/sh\" autocomplete=\"off\"> <output id=\"q-count\"></output><ol id=\"results\"></ol>");
    let _ = writeln!(s, "<script type=\"application/json\" id=\"paths\">{}</script></section>", json_for_script(&Value::Array(rows)));
}

#[cfg(test)]
mod tests {
    use super::*;

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
            mode: Mode::Inspect { wasted: &[] },
            entries: &entries,
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
        let mode = Mode::Inspect { wasted: &[] };
        let items = mode.items(&entries);
        let t = Tree::build(&items);
        let dirs = view(&mut s, &t, 0, &items, mode.legend());
        assert_eq!(s.matches("class=\"cell\"").count(), 3, "{s}");
        assert_eq!(dirs.len(), 2, "bin and etc have children; tmp is empty");
        assert!(s.contains("data-dir=\"/bin\""));
    }
}
