//! The human summary of `slim`: the result first (sizes and a waterfall that adds up), then
//! what was kept and why, the drops, notes, warnings and risks. One unit system (SI, as
//! `human`), plurals, lines wrapped to the terminal.
use super::{human, Sizes};
use crate::plan::Plan;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Everything the summary needs besides the plan: the sizes of both images and the bytes
/// each stage took, so the waterfall adds up from before to after.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Accounting {
    /// The input's layer tars (uncompressed) and blobs (as stored).
    pub before: Sizes,
    /// The input's layers are stored uncompressed (a docker-archive): its "stored" size is
    /// not a compressed size.
    pub before_plain: bool,
    pub layers: usize,
    /// Regular-file bytes in the input's layers, every copy counted.
    pub layers_content: u64,
    /// Bytes the packer saved, and how many executables it packed.
    pub packing_saved: u64,
    pub packed: usize,
    pub after: Option<After>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct After {
    /// The new layer's tar bytes.
    pub uncompressed: u64,
    /// The blob as stored; None in a dry run (nothing is compressed).
    pub stored: Option<u64>,
    /// Regular-file bytes in the new layer.
    pub content: u64,
    /// gzip, zstd:19, none… (as `--compression` spells it).
    pub compression: String,
    /// A dry run: the tar was counted, not written.
    pub dry_run: bool,
}

/// One line of the waterfall: a signed byte count and what it is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub what: String,
    pub bytes: i64,
}

/// before − overwritten − each drop category − packing ± rewrites ± tar headers = after.
/// Built by subtraction from measured totals, so it adds up exactly.
pub fn waterfall(plan: &Plan, acc: &Accounting) -> Option<(u64, Vec<Step>, u64)> {
    let after = acc.after.as_ref()?;
    let merged = plan.bytes(true) + plan.bytes(false);
    let kept = plan.bytes(true) as i64;
    let mut steps = vec![Step { what: "overwritten or deleted by upper layers".into(), bytes: merged as i64 - acc.layers_content as i64 }];
    let mut by_cat: BTreeMap<&str, u64> = BTreeMap::new();
    for e in plan.entries.iter().filter(|e| !e.keep) {
        *by_cat.entry(e.category.as_deref().unwrap_or("other")).or_default() += e.size;
    }
    let mut cats: Vec<(&str, u64)> = by_cat.into_iter().collect();
    cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (c, b) in cats {
        steps.push(Step { what: format!("dropped: {c}"), bytes: -(b as i64) });
    }
    steps.push(Step { what: format!("packing ({})", plural(acc.packed as u64, "executable")), bytes: -(acc.packing_saved as i64) });
    let rewritten = after.content as i64 - (kept - acc.packing_saved as i64);
    steps.push(Step { what: "files rewritten or added (package database, users)".into(), bytes: rewritten });
    let old_headers = acc.before.uncompressed as i64 - acc.layers_content as i64;
    let new_headers = after.uncompressed as i64 - after.content as i64;
    steps.push(Step { what: "tar headers and padding".into(), bytes: new_headers - old_headers });
    steps.retain(|s| s.bytes != 0);
    Some((acc.before.uncompressed, steps, after.uncompressed))
}

pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else if let Some(stem) = word.strip_suffix('y') {
        format!("{n} {stem}ies")
    } else {
        format!("{n} {word}s")
    }
}

/// `-87.7%, 8.2x smaller` or `+2.6%`: growth is printed as growth.
pub fn change(before: u64, after: u64) -> String {
    if before == 0 {
        return "new".into();
    }
    let pct = (after as f64 - before as f64) * 100.0 / before as f64;
    let factor = before as f64 / after.max(1) as f64;
    if after >= before || factor < 1.1 {
        format!("{pct:+.1}%")
    } else {
        format!("{pct:+.1}%, {factor:.1}x smaller")
    }
}

/// Wrap `text` at spaces to `width`, the first line after `first`, the others after
/// `indent`. A word longer than the line (a path) stays whole.
pub fn wrap(first: &str, indent: &str, text: &str, width: usize) -> String {
    let mut out = String::from(first);
    let mut col = first.chars().count();
    let mut line_start = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let n = word.chars().count();
        if !line_start && col + 1 + n > width {
            out.push('\n');
            out.push_str(indent);
            col = indent.chars().count();
            line_start = true;
        }
        if !line_start {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += n;
        line_start = false;
    }
    out.push('\n');
    out
}

/// `text` cut to `n` characters, with an ellipsis when cut.
fn cut(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        return text.to_string();
    }
    let mut t: String = text.chars().take(n.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// Columns for human output: the terminal's when stderr is one, else 80.
pub fn width() -> usize {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        if let Some((_, w)) = console::Term::stderr().size_checked() {
            return (w as usize).clamp(60, 160);
        }
    }
    80
}

/// The human summary. `extra` are the run's notes (pack decisions, distroless, pkgdb).
pub fn summary(plan: &Plan, acc: &Accounting, extra: &[String]) -> String {
    let w = width();
    let mut s = String::new();
    result(&mut s, plan, acc);
    if let Some((before, steps, after)) = waterfall(plan, acc) {
        s.push_str(&waterfall_text(before, &steps, after, acc));
    }
    kept(&mut s, plan, w);
    drops(&mut s, plan, w);
    let notes: Vec<&String> = plan.notes.iter().chain(extra).collect();
    section(&mut s, "note", &notes, w);
    section(&mut s, "warning", &plan.warnings.iter().collect::<Vec<_>>(), w);
    if plan.risks.is_empty() {
        s.push_str("risks: none\n");
    } else {
        let _ = writeln!(s, "risks ({}):", plan.risks.len());
        for r in &plan.risks {
            s.push_str(&wrap("  ", "    ", &r.to_string(), w));
        }
    }
    s
}

fn level_name(plan: &Plan) -> String {
    serde_json::to_value(plan.level).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn result(s: &mut String, plan: &Plan, acc: &Accounting) {
    let files = |keep: bool| plan.entries.iter().filter(|e| e.keep == keep && e.kind != "dir").count() as u64;
    let level = level_name(plan);
    let b = acc.before;
    match &acc.after {
        Some(a) if a.dry_run => {
            let _ = writeln!(s, "result (dry run, nothing written): level {level}, {} -> {} uncompressed ({})", human(b.uncompressed), human(a.uncompressed), change(b.uncompressed, a.uncompressed));
            let _ = writeln!(s, "  stored: {} before; the compressed size is known only when writing", stored_before(acc));
        }
        Some(a) => {
            let _ = writeln!(s, "result: level {level}, {} -> {} uncompressed ({})", human(b.uncompressed), human(a.uncompressed), change(b.uncompressed, a.uncompressed));
            let _ = writeln!(s, "  stored: {}", stored_line(acc, a));
        }
        None => {
            let _ = writeln!(s, "result: level {level}, {} uncompressed, {} stored", human(b.uncompressed), stored_before(acc));
        }
    }
    let _ = writeln!(s, "  files: {} kept, {} dropped", files(true), files(false));
}

fn stored_before(acc: &Accounting) -> String {
    if acc.before_plain {
        format!("{} (layers not compressed)", human(acc.before.compressed))
    } else {
        human(acc.before.compressed)
    }
}

/// Like with like: a ratio only between two compressed sizes.
fn stored_line(acc: &Accounting, a: &After) -> String {
    let stored = a.stored.unwrap_or(a.uncompressed);
    let after_plain = a.compression == "none";
    match (acc.before_plain, after_plain) {
        (false, false) => format!("{} compressed -> {} {} ({})", human(acc.before.compressed), human(stored), a.compression, change(acc.before.compressed, stored)),
        (true, true) => format!("{} -> {} (layers not compressed)", human(acc.before.compressed), human(stored)),
        (true, false) => format!("{} (layers not compressed) -> {} {}; compare the uncompressed sizes", human(acc.before.compressed), human(stored), a.compression),
        (false, true) => format!("{} compressed -> {} (layers not compressed); compare the uncompressed sizes", human(acc.before.compressed), human(stored)),
    }
}

/// The unit the waterfall is printed in: the one `human` picks for `before`.
fn unit_of(bytes: u64) -> (f64, &'static str) {
    match bytes {
        0..=999 => (1.0, "B"),
        1_000..=999_999 => (1e3, "kB"),
        1_000_000..=999_999_999 => (1e6, "MB"),
        _ => (1e9, "GB"),
    }
}

/// Rounded to tenths of the unit so that the printed lines add up too: the rounding
/// remainder goes to the largest step.
fn rounded(before: u64, steps: &[Step], after: u64, unit: f64) -> (i64, Vec<i64>, i64) {
    let r = |b: i64| (b as f64 * 10.0 / unit).round() as i64;
    let (b, a) = (r(before as i64), r(after as i64));
    let mut out: Vec<i64> = steps.iter().map(|s| r(s.bytes)).collect();
    let diff = a - (b + out.iter().sum::<i64>());
    if let Some(i) = (0..out.len()).max_by_key(|&i| steps[i].bytes.unsigned_abs()) {
        out[i] += diff;
    }
    (b, out, a)
}

fn waterfall_text(before: u64, steps: &[Step], after: u64, acc: &Accounting) -> String {
    let (unit, name) = unit_of(before.max(after));
    let (b, r, a) = rounded(before, steps, after, unit);
    let num = |t: i64| format!("{}.{}", t.abs() / 10, t.abs() % 10);
    let mut s = format!("size, uncompressed ({name}):\n");
    let _ = writeln!(s, "    {:>9}  before ({})", num(b), plural(acc.layers as u64, "layer"));
    // A step that rounds to 0.0 is noise here (its bytes are in the JSON report).
    for (st, t) in steps.iter().zip(&r).filter(|(_, t)| **t != 0) {
        let sign = if st.bytes < 0 { '-' } else { '+' };
        let _ = writeln!(s, "  {sign} {:>9}  {}", num(*t), st.what);
    }
    let _ = writeln!(s, "  = {:>9}  after{}", num(a), if acc.after.as_ref().is_some_and(|x| x.dry_run) { " (estimated: the tar counted, not written)" } else { "" });
    s
}

/// Roots and profiles (why things are kept), and the largest kept files with hardlinked
/// names folded into one line.
fn kept(s: &mut String, plan: &Plan, w: usize) {
    s.push_str("kept because:\n");
    // Many roots can share one label (every command on PATH of an interactive shell): one line.
    let mut by_label: Vec<(&str, Vec<&str>)> = Vec::new();
    for (p, l) in &plan.roots {
        match by_label.iter_mut().find(|(x, _)| *x == l.as_str()) {
            Some((_, v)) => v.push(p),
            None => by_label.push((l, vec![p])),
        }
    }
    for (l, paths) in by_label {
        let text = if paths.len() > 3 { format!("{} ({l}), e.g. {}", plural(paths.len() as u64, "path"), paths[..3].join(", ")) } else { format!("{} ({l})", paths.join(", ")) };
        s.push_str(&wrap("  root: ", "        ", &text, w));
    }
    for (n, why) in &plan.profiles {
        let why = why.strip_prefix(&format!("{n}: ")).unwrap_or(why);
        s.push_str(&wrap(&format!("  profile {n}: "), "    ", why, w));
    }
    let largest = largest_kept(plan, 10);
    if !largest.is_empty() {
        s.push_str("largest kept files:\n");
    }
    // One line each: the reason cut to fit (--explain PATH prints it in full).
    for (size, name, why) in largest {
        let head = format!("  {size:>9}  {name}");
        let room = w.saturating_sub(head.chars().count() + 3);
        if room >= 12 {
            let _ = writeln!(s, "{head} ({})", cut(&why, room));
        } else {
            let _ = writeln!(s, "{head}\n             ({})", cut(&why, w.saturating_sub(16)));
        }
    }
}

/// The largest kept inodes, each named by its canonical path (the first root that is one of
/// its names, else the name holding its bytes) with `(+N links)` for its other kept names.
pub fn largest_kept(plan: &Plan, n: usize) -> Vec<(String, String, String)> {
    let mut names: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, e) in plan.entries.iter().enumerate().filter(|(_, e)| e.keep && e.kind == "file") {
        if let Some(ino) = e.inode {
            names.entry(ino).or_default().push(i);
        }
    }
    let root_rank: HashMap<&str, usize> = plan.roots.iter().enumerate().map(|(i, (p, _))| (p.as_str(), i)).collect();
    let mut sized: Vec<&crate::plan::Entry> = plan.entries.iter().filter(|e| e.keep && e.size > 0).collect();
    sized.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    sized
        .into_iter()
        .take(n)
        .map(|e| {
            let (name, canonical) = named(plan, e, &names, &root_rank);
            (human(e.size), name, canonical.why.to_string())
        })
        .collect()
}

/// A kept file's name: hardlinked names fold into the canonical one with `(+N links)`.
fn named<'a>(plan: &'a Plan, e: &'a crate::plan::Entry, names: &HashMap<usize, Vec<usize>>, root_rank: &HashMap<&str, usize>) -> (String, &'a crate::plan::Entry) {
    let all = e.inode.and_then(|i| names.get(&i)).cloned().unwrap_or_default();
    let rank = |x: &&crate::plan::Entry| root_rank.get(x.path.as_str()).copied();
    let canonical = all.iter().map(|&i| &plan.entries[i]).filter(|x| rank(x).is_some()).min_by_key(|x| rank(x)).unwrap_or(e);
    let links = all.len().saturating_sub(1);
    let name = if links > 0 { format!("{} (+{})", canonical.path, plural(links as u64, "link")) } else { canonical.path.clone() };
    (name, canonical)
}

/// The name `named` gives the kept file at `path` (for notes that name one path of it).
pub fn canonical_name(plan: &Plan, path: &str) -> String {
    let Some(e) = plan.find(path) else { return path.to_string() };
    let mut names: HashMap<usize, Vec<usize>> = HashMap::new();
    if let Some(ino) = e.inode {
        names.insert(ino, plan.entries.iter().enumerate().filter(|(_, x)| x.keep && x.inode == Some(ino)).map(|(i, _)| i).collect());
    }
    let root_rank: HashMap<&str, usize> = plan.roots.iter().enumerate().map(|(i, (p, _))| (p.as_str(), i)).collect();
    named(plan, e, &names, &root_rank).0
}

fn drops(s: &mut String, plan: &Plan, w: usize) {
    let rules: Vec<_> = plan.rules.iter().filter(|r| r.files > 0).collect();
    if rules.is_empty() {
        s.push_str("dropped: nothing\n");
        return;
    }
    s.push_str("dropped, by rule:\n");
    for r in rules {
        let head = format!("  {:>9}  {:<11} {} ({}): ", human(r.bytes), plural(r.files, "file"), r.name, r.category);
        s.push_str(&wrap(&head, "             ", &r.description, w));
    }
}

/// `note: …` / `warning: …`, one item each (as cargo prints them), wrapped.
fn section(s: &mut String, what: &str, items: &[&String], w: usize) {
    for i in items {
        s.push_str(&wrap(&format!("{what}: "), "  ", i, w));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_keeps_the_printed_sum() {
        let steps = vec![Step { what: "a".into(), bytes: -1_049_999 }, Step { what: "b".into(), bytes: -1_049_999 }, Step { what: "c".into(), bytes: 40_000 }];
        let before = 10_000_000u64;
        let after = (before as i64 + steps.iter().map(|s| s.bytes).sum::<i64>()) as u64;
        let (b, r, a) = rounded(before, &steps, after, 1e6);
        assert_eq!(b + r.iter().sum::<i64>(), a);
    }

    #[test]
    fn growth_is_growth() {
        assert_eq!(change(2_200_000, 2_257_200), "+2.6%");
        assert_eq!(change(10, 5), "-50.0%, 2.0x smaller");
        assert_eq!(plural(1, "file"), "1 file");
        assert_eq!(plural(2, "dependency"), "2 dependencies");
    }

    #[test]
    fn wrap_fits_and_keeps_long_words() {
        let t = wrap("  - ", "    ", &"word ".repeat(40), 30);
        assert!(t.lines().all(|l| l.len() <= 30), "{t}");
        let p = format!("/{}", "x".repeat(50));
        assert!(wrap("  ", "  ", &p, 30).contains(&p));
    }
}
