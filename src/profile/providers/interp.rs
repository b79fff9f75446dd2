//! Ruby and Perl: the library trees the image's Env adds to the interpreter's search path
//! (GEM_HOME, BUNDLE_PATH, RUBYLIB; PERL5LIB, PERLLIB). The interpreters' own trees and the
//! extension `.so` in them are declarative (profiles/{ruby,perl}.toml).
use super::super::schema::{self, ProfileFile};
use super::super::{Acc, Ctx};
use super::keep_lib_tree;
use crate::elf::Node;

/// Env keys whose value is a `:`-separated list of Ruby library/gem dirs.
const RUBY_ENV: &[&str] = &["GEM_HOME", "GEM_PATH", "BUNDLE_PATH", "RUBYLIB"];
/// Env keys whose value is a `:`-separated list of Perl module dirs.
const PERL_ENV: &[&str] = &["PERL5LIB", "PERLLIB"];

pub(crate) fn ruby(cx: &Ctx, acc: &mut Acc, profile: &ProfileFile) -> Option<String> {
    env_trees(cx, acc, profile, RUBY_ENV, "native extension, dlopen()ed by require")
}

pub(crate) fn perl(cx: &Ctx, acc: &mut Acc, profile: &ProfileFile) -> Option<String> {
    env_trees(cx, acc, profile, PERL_ENV, "XS module, dlopen()ed by DynaLoader")
}

/// Each existing dir the keys name is kept (minus the profile's excludes: gem caches, tests,
/// build leftovers) and its `.so` are ELF roots.
fn env_trees(cx: &Ctx, acc: &mut Acc, profile: &ProfileFile, keys: &[&str], so_label: &str) -> Option<String> {
    let fs = cx.view.fs;
    let exclude = schema::globset(&profile.keep.exclude).ok()?;
    let mut dirs = Vec::new();
    for key in keys {
        let Some(value) = cx.view.env_get(key) else { continue };
        for d in value.split(':').filter(|d| d.starts_with('/')) {
            let Some(r) = fs.resolve(d).filter(|r| r.node == Node::Dir) else { continue };
            keep_lib_tree(fs, acc, &r.path, &format!("{}: Env {key}={value}", profile.name), &exclude, so_label);
            dirs.push(r.path);
        }
    }
    (!dirs.is_empty()).then(|| format!("library dirs from Env: {}", dirs.join(" ")))
}
