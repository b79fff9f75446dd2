//! apk: `/lib/apk/db/installed`, one stanza per package; `F:dir` lines each followed by the
//! `R:file` entries in that directory (with their `a:` mode and `Z:` checksum lines). Pruned
//! file by file as dpkg's lists are: a package with nothing left is deleted.
use super::dpkg::{fate, meta_of, Kept};
use super::{Mode, NewFile, PackageUse, Rewrite};
use crate::elf::RootFs;
use crate::error::Result;
use crate::plan::TreeFs;

pub const INSTALLED: &str = "/lib/apk/db/installed";

/// End an `R:` block: a kept file brings its directory's `F:` block along (once).
fn flush<'a>(out: &mut Vec<&'a str>, dir_block: &mut Vec<&'a str>, file_block: &mut Vec<&'a str>, keep: bool, has: &mut bool) {
    if keep && !file_block.is_empty() {
        out.append(dir_block);
        *has = true;
    }
    if keep {
        out.append(file_block);
    }
    file_block.clear();
}

/// One package stanza with only its kept files, and its usage.
fn package(fs: &TreeFs, kept: &Kept, text: &str) -> (String, PackageUse) {
    let mut usage = PackageUse::default();
    let (mut out, mut dir_block, mut file_block): (Vec<&str>, Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new(), Vec::new());
    let (mut dir, mut dir_has_files, mut keep_file) = (String::new(), false, false);
    for l in text.lines() {
        if let Some(d) = l.strip_prefix("F:") {
            flush(&mut out, &mut dir_block, &mut file_block, keep_file, &mut dir_has_files);
            // A directory with no kept file stays listed while the directory itself is kept.
            if !dir_has_files && !dir_block.is_empty() && kept.get(format!("/{dir}").as_str()).is_some_and(|k| k.0) {
                out.append(&mut dir_block);
            }
            dir_block.clear();
            (dir, dir_has_files, keep_file) = (d.to_string(), false, false);
            dir_block.push(l);
        } else if let Some(name) = l.strip_prefix("R:") {
            flush(&mut out, &mut dir_block, &mut file_block, keep_file, &mut dir_has_files);
            let path = if dir.is_empty() { format!("/{name}") } else { format!("/{dir}/{name}") };
            let f = fate(fs, kept, &path);
            keep_file = f.as_ref().is_some_and(|f| f.kept);
            match f {
                Some(f) if f.kept => (usage.files_kept, usage.bytes_kept) = (usage.files_kept + 1, usage.bytes_kept + f.size),
                Some(f) => (usage.files_dropped, usage.bytes_dropped) = (usage.files_dropped + 1, usage.bytes_dropped + f.size),
                None => {}
            }
            file_block.push(l);
        } else if !file_block.is_empty() {
            file_block.push(l);
        } else if !dir_block.is_empty() {
            dir_block.push(l);
        } else {
            if let Some(v) = l.strip_prefix("P:") {
                usage.name = v.to_string();
            } else if let Some(v) = l.strip_prefix("V:") {
                usage.version = v.to_string();
            }
            out.push(l);
        }
    }
    flush(&mut out, &mut dir_block, &mut file_block, keep_file, &mut dir_has_files);
    if !dir_has_files && !dir_block.is_empty() && kept.get(format!("/{dir}").as_str()).is_some_and(|k| k.0) {
        out.append(&mut dir_block);
    }
    (out.join("\n") + "\n", usage)
}

pub fn rewrite(fs: &TreeFs, kept: &Kept, mode: Mode) -> Result<Rewrite> {
    let Some((path, _)) = fs.location(INSTALLED) else { return Ok(Rewrite::default()) };
    let Some(bytes) = fs.read_file(&path) else { return Ok(Rewrite::default()) };
    let text = String::from_utf8_lossy(&bytes);
    let prune = matches!(mode, Mode::Prune | Mode::StatusD);
    let mut rw = Rewrite { mode: Some(mode), db: "apk", ..Default::default() };
    let mut stanzas = Vec::new();
    for t in text.split("\n\n").map(|t| t.trim_matches('\n')).filter(|t| !t.is_empty()) {
        let (stanza, usage) = package(fs, kept, t);
        let removed = prune && usage.files_kept == 0;
        if !removed {
            stanzas.push(stanza);
        }
        rw.packages.push(PackageUse { removed, ..usage });
    }
    let db_dir = path.rsplit_once('/').map_or("", |(d, _)| d).to_string();
    match mode {
        Mode::Keep | Mode::Drop => {
            for p in kept.keys().filter(|p| p.starts_with(&format!("{db_dir}/"))) {
                rw.decisions.insert(p.to_string(), mode == Mode::Keep);
            }
        }
        Mode::Prune | Mode::StatusD => {
            rw.decisions.insert(path.clone(), true);
            // apk's format ends each stanza with a blank line.
            let body: String = stanzas.iter().map(|s| format!("{s}\n")).collect();
            rw.files.push(NewFile { meta: meta_of(fs, &path), path, bytes: body.into_bytes() });
        }
    }
    Ok(rw)
}

/// The packages `installed` lists, with the files it names that the tree has.
pub fn installed(fs: &TreeFs) -> Vec<super::Installed> {
    let Some(bytes) = fs.location(INSTALLED).and_then(|(p, _)| fs.read_file(&p)) else { return Vec::new() };
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Vec::new();
    for t in text.split("\n\n").filter(|t| !t.trim().is_empty()) {
        let mut p = super::Installed { ecosystem: "apk", name: String::new(), version: String::new(), arch: String::new(), files: Vec::new() };
        let mut dir = "";
        for l in t.lines() {
            match l.split_once(':') {
                Some(("P", v)) => p.name = v.to_string(),
                Some(("V", v)) => p.version = v.to_string(),
                Some(("A", v)) => p.arch = v.to_string(),
                Some(("F", v)) => dir = v,
                Some(("R", v)) => p.files.push(if dir.is_empty() { format!("/{v}") } else { format!("/{dir}/{v}") }),
                _ => {}
            }
        }
        p.files.retain(|f| fs.lstat(f).is_some());
        if !p.name.is_empty() {
            out.push(p);
        }
    }
    out
}
