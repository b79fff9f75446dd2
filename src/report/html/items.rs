//! What the page shows in each mode, as one list of items (a path, its bytes, its class in the
//! legend and a note): the treemap, the search box and the "largest" tables all read it, so
//! the three modes share one renderer.
use super::super::ci::WastedFile;
use super::super::diff::{describe_change, Diff};
use super::decision;
use crate::plan::{Entry, Plan};
use std::collections::HashSet;

/// The page's mode: what its colours mean.
pub enum Mode<'a> {
    /// `slim`: the original image coloured by the plan's decisions.
    Slim(&'a Plan),
    /// `inspect`: the merged tree (live) plus the lower-layer copies upper layers hid (wasted).
    Inspect { wasted: &'a [WastedFile] },
    /// `diff A B`: the union of both trees.
    Diff(&'a Diff<'a>),
}

/// One class of the legend: its name (also the cells' `data-class`) and colour.
pub struct Class {
    pub name: &'static str,
    pub colour: &'static str,
}

const fn class(name: &'static str, colour: &'static str) -> Class {
    Class { name, colour }
}

const SLIM: [Class; 2] = [class("kept", "#66bb6a"), class("dropped", "#ef5350")];
const INSPECT: [Class; 2] = [class("live", "#64b5f6"), class("wasted", "#ef5350")];
const DIFF: [Class; 4] = [class("same", "#b0bec5"), class("removed", "#ef5350"), class("added", "#66bb6a"), class("changed", "#ffb300")];
/// Classes of the diff mode, by index into `DIFF`.
const SAME: u8 = 0;
const REMOVED: u8 = 1;
const ADDED: u8 = 2;
const CHANGED: u8 = 3;

/// One path (or one hidden copy of it) as the page shows it.
pub struct Item {
    pub path: String,
    pub kind: &'static str,
    pub size: u64,
    /// Index into the mode's legend.
    pub class: u8,
    pub note: String,
}

impl Mode<'_> {
    pub fn legend(&self) -> &'static [Class] {
        match self {
            Mode::Slim(_) => &SLIM,
            Mode::Inspect { .. } => &INSPECT,
            Mode::Diff(_) => &DIFF,
        }
    }

    /// What area and colour mean, under the treemap.
    pub fn explain(&self) -> &'static str {
        match self {
            Mode::Slim(_) => "Area is the original's bytes (content plus a 512-byte tar header per entry).",
            Mode::Inspect { .. } => {
                "Live: in the merged tree, what a container sees. Wasted: a lower layer's copy that an upper layer overwrote or deleted; it is stored and pulled for nothing (per layer in the Layers table). Area is bytes in all layers (content plus a 512-byte tar header per entry)."
            }
            Mode::Diff(_) => "Area is A's bytes (B's for added paths); a hardlinked file counts once.",
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            Mode::Slim(_) => "Treemap of the original image",
            Mode::Inspect { .. } => "Treemap of the image, live and wasted bytes",
            Mode::Diff(_) => "Treemap of A and B",
        }
    }

    /// Every item of the page, in path order within each source.
    pub fn items(&self, entries: &[Entry]) -> Vec<Item> {
        match self {
            Mode::Slim(_) => entries.iter().map(|e| Item { path: e.path.clone(), kind: e.kind, size: e.size, class: u8::from(!e.keep), note: decision(e, true) }).collect(),
            Mode::Inspect { wasted } => inspect_items(entries, wasted),
            Mode::Diff(d) => diff_items(d),
        }
    }
}

fn inspect_items(entries: &[Entry], wasted: &[WastedFile]) -> Vec<Item> {
    let live: HashSet<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let mut items: Vec<Item> = entries.iter().map(|e| Item { path: e.path.clone(), kind: e.kind, size: e.size, class: 0, note: "live".into() }).collect();
    for w in wasted {
        let how = if live.contains(w.path.as_str()) { "overwritten" } else { "deleted" };
        let note = format!("wasted: layer {}'s copy, {how} by layer {}", w.layer, w.hidden_by);
        items.push(Item { path: w.path.clone(), kind: "file", size: w.bytes, class: 1, note });
    }
    items
}

fn diff_items(d: &Diff) -> Vec<Item> {
    let size = |e: &super::super::diff::Entry| if e.counted() { e.size } else { 0 };
    let mut items = Vec::with_capacity(d.removed.len() + d.added.len() + d.changed.len() + d.same.len());
    for (p, e) in &d.removed {
        items.push(Item { path: p.to_string(), kind: e.kind, size: size(e), class: REMOVED, note: "removed (only in A)".into() });
    }
    for (p, e) in &d.added {
        items.push(Item { path: p.to_string(), kind: e.kind, size: size(e), class: ADDED, note: "added (only in B)".into() });
    }
    for c in &d.changed {
        let note = format!("changed: {}", describe_change(c, true));
        items.push(Item { path: c.path.to_string(), kind: c.a.kind, size: size(c.a), class: CHANGED, note });
    }
    for (p, e) in &d.same {
        items.push(Item { path: p.to_string(), kind: e.kind, size: size(e), class: SAME, note: "same in A and B".into() });
    }
    items
}
