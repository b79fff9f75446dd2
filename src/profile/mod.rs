//! PLACEHOLDER with the agreed interface; replaced by the real profile stage on merge.
use crate::elf::RootFs;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProfileError(pub String);

pub struct ProfileSet {
    names: Vec<String>,
}
impl ProfileSet {
    pub fn builtin() -> Result<ProfileSet, ProfileError> {
        Ok(ProfileSet { names: vec!["base".into()] })
    }
    pub fn add_file(&mut self, path: &Path) -> Result<String, ProfileError> {
        Err(ProfileError(format!("{}: profiles not implemented yet", path.display())))
    }
    pub fn names(&self) -> Vec<String> {
        self.names.clone()
    }
}
pub struct ImageView<'a> {
    pub fs: &'a dyn RootFs,
    pub env: &'a [(String, String)],
    pub roots: &'a [String],
    pub workdir: Option<&'a str>,
    pub user: Option<&'a str>,
}
pub struct Applied {
    pub name: String,
    pub why: String,
}
pub struct Keep {
    pub path: String,
    pub reason: String,
}
#[derive(Default)]
pub struct Needs {
    pub applied: Vec<Applied>,
    pub keep: Vec<Keep>,
    pub elf_roots: Vec<Keep>,
    pub drop_exclusions: Vec<Keep>,
    pub warnings: Vec<String>,
}
pub fn evaluate(_set: &ProfileSet, _forced: &[String], view: &ImageView) -> Result<Needs, ProfileError> {
    let mut n = Needs::default();
    for p in ["/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/hosts", "/etc/resolv.conf", "/tmp", "/etc/os-release"] {
        if view.fs.resolve(p).is_some() {
            n.keep.push(Keep { path: p.into(), reason: "base profile".into() });
        }
    }
    n.applied.push(Applied { name: "base".into(), why: "always".into() });
    Ok(n)
}
pub struct DropRule {
    pub name: String,
    pub category: String,
    pub description: String,
    pub distroless_only: bool,
    set: globset::GlobSet,
}
impl DropRule {
    pub fn matches(&self, path: &str) -> bool {
        self.set.is_match(path)
    }
}
pub fn drop_rules(_set: &ProfileSet, _applied: &[Applied]) -> Vec<DropRule> {
    let mk = |name: &str, cat: &str, globs: &[&str], dl: bool| {
        let mut b = globset::GlobSetBuilder::new();
        for g in globs {
            if let Ok(g) = globset::GlobBuilder::new(g).literal_separator(true).build() {
                b.add(g);
            }
        }
        DropRule { name: name.into(), category: cat.into(), description: name.into(), distroless_only: dl, set: b.build().unwrap_or_else(|_| globset::GlobSet::empty()) }
    };
    vec![
        mk("apt-lists", "caches", &["/var/lib/apt/lists/**"], false),
        mk("apt-archives", "caches", &["/var/cache/apt/**"], false),
        mk("docs", "docs", &["/usr/share/doc/**"], false),
        mk("man", "docs", &["/usr/share/man/**"], false),
        mk("dpkg", "package-manager", &["/var/lib/dpkg/**", "/usr/bin/dpkg*", "/usr/bin/apt*"], true),
    ]
}
