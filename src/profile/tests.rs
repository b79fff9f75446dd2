//! Unit tests on small in-memory trees (real-data tests are in tests/profile.rs).
use std::collections::BTreeMap;

use super::*;
use crate::elf::Node;

/// In-memory fs: path → (node, contents).
#[derive(Default)]
pub(crate) struct Mem(BTreeMap<String, (Node, Vec<u8>)>);
impl Mem {
    fn add(&mut self, p: &str, n: Node, c: &[u8]) {
        let mut d = crate::elf::rootfs::dirname(p);
        while d != "/" {
            self.0.entry(d.clone()).or_insert((Node::Dir, Vec::new()));
            d = crate::elf::rootfs::dirname(&d);
        }
        self.0.insert(p.to_string(), (n, c.to_vec()));
    }
    fn file(mut self, p: &str, c: &str) -> Self {
        self.add(p, Node::File, c.as_bytes());
        self
    }
    fn dir(mut self, p: &str) -> Self {
        self.add(p, Node::Dir, b"");
        self
    }
    fn link(mut self, p: &str, t: &str) -> Self {
        self.add(p, Node::Symlink(t.into()), b"");
        self
    }
}
impl RootFs for Mem {
    fn lstat(&self, p: &str) -> Option<Node> {
        if p == "/" {
            return Some(Node::Dir);
        }
        self.0.get(p).map(|x| x.0.clone())
    }
    fn read_file(&self, p: &str) -> Option<Vec<u8>> {
        self.0.get(p).filter(|x| x.0 == Node::File).map(|x| x.1.clone())
    }
    fn list_dir(&self, p: &str) -> Vec<String> {
        let pre = if p == "/" { "/".to_string() } else { format!("{p}/") };
        self.0.keys().filter_map(|k| k.strip_prefix(&pre)).filter(|r| !r.is_empty() && !r.contains('/')).map(str::to_string).collect()
    }
}

fn eval(fs: &Mem, env: &[(&str, &str)], roots: &[&str], wd: Option<&str>, forced: &[&str]) -> Needs {
    let set = ProfileSet::builtin().unwrap();
    let env: Vec<(String, String)> = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let roots: Vec<String> = roots.iter().map(|s| s.to_string()).collect();
    let forced: Vec<String> = forced.iter().map(|s| s.to_string()).collect();
    let view = ImageView { fs, env: &env, roots: &roots, workdir: wd, user: None };
    evaluate(&set, &forced, &view).unwrap()
}

fn kept(n: &Needs) -> Vec<&str> {
    n.keep.iter().map(|k| k.path.as_str()).collect()
}

#[test]
fn builtin_profiles_parse_and_rule_names_are_unique() {
    let set = ProfileSet::builtin().unwrap();
    let names = set.names();
    for n in ["base", "ca-certificates", "glibc", "glibc-gconv", "jvm", "musl", "nginx", "node", "openssl", "python", "tzdata", "tzdata-all"] {
        assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
    }
    let all: Vec<Applied> = names.iter().map(|n| Applied { name: n.clone(), why: String::new() }).collect();
    let rules = drop_rules(&set, &all);
    let mut seen = std::collections::BTreeSet::new();
    for r in &rules {
        assert!(seen.insert(r.name.clone()), "duplicate rule {}", r.name);
    }
    assert_eq!(rules[0].profile, "base");
    // Only base rules without applied profiles.
    let base_only = drop_rules(&set, &[]);
    assert!(base_only.iter().all(|r| r.profile == "base"));
    assert!(base_only.len() >= 25);
}

#[test]
fn schema_errors_are_reported() {
    let bad = [
        ("name = \"X\"", "must be"),
        ("name = \"x\"\nproviders = [\"nope\"]", "unknown provider"),
        ("name = \"x\"\n[keep]\nglobs = [\"relative/path\"]", "absolute"),
        ("name = \"x\"\n[keep]\nglobs = [\"/a/[\"]", "keep.globs"),
        ("name = \"x\"\n[detect]\nelf_names = [\"a/b\"]", "basename"),
        ("name = \"x\"\nbogus = 1", "unknown field"),
        ("name = \"x\"\n[[drop]]\nname = \"r\"\ncategory = \"stuff\"\ndescription = \"d\"\nglobs = [\"/a\"]", "unknown category"),
        ("name = \"x\"\n[[drop]]\nname = \"r\"\ncategory = \"docs\"\ndescription = \"d\"\nglobs = []", "no globs"),
    ];
    for (text, want) in bad {
        let e = schema::ProfileFile::parse(text, "t.toml").unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn globset_semantics() {
    let m = |p: &str, s: &str| schema::glob(p).unwrap().compile_matcher().is_match(s);
    assert!(m("/tmp/**", "/tmp/a/b"));
    assert!(!m("/tmp/**", "/tmp"), "contents, not the dir");
    assert!(m("**/*.a", "/usr/lib/x86_64-linux-gnu/libc.a"));
    assert!(!m("/etc/ssl/certs/*", "/etc/ssl/certs/a/b"));
    assert!(m("**/.npm/**", "/root/.npm/_cacache/x"));
    assert!(m("**/lib/python[0-9]*/test", "/usr/lib/python3.11/test"));
}

#[test]
fn nsswitch_parsing() {
    let t = "# c\npasswd: files systemd\nhosts: files [NOTFOUND=return] mdns4_minimal [ NOTFOUND=return ] dns\nbad line\n: x\nnetgroup:nis # tail\n";
    let p = providers::parse_nsswitch(t);
    assert_eq!(p[0], ("passwd".into(), vec!["files".into(), "systemd".into()]));
    assert_eq!(p[1].1, vec!["files", "mdns4_minimal", "dns"]);
    assert_eq!(p[2], ("netgroup".into(), vec!["nis".into()]));
    assert_eq!(p.len(), 3);
}

#[test]
fn base_keeps_etc_and_follows_symlink_chains() {
    let fs = Mem::default()
        .file("/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
        .file("/etc/group", "root:x:0:\n")
        .link("/etc/os-release", "../usr/lib/os-release")
        .file("/usr/lib/os-release", "ID=x\n")
        .link("/etc/localtime", "/usr/share/zoneinfo/Europe/Paris")
        .link("/usr/share/zoneinfo/Europe/Paris", "../posix/Europe/Paris")
        .file("/usr/share/zoneinfo/posix/Europe/Paris", "TZif")
        .file("/usr/share/zoneinfo/Asia/Tokyo", "TZif")
        .file("/tmp/junk", "x")
        .dir("/root")
        .file("/app/main.sh", "#!/bin/sh\n");
    let n = eval(&fs, &[], &[], Some("/app"), &[]);
    let k = kept(&n);
    for p in ["/etc/passwd", "/etc/group", "/etc/os-release", "/usr/lib/os-release", "/etc/localtime", "/usr/share/zoneinfo/Europe/Paris", "/usr/share/zoneinfo/posix/Europe/Paris", "/app"] {
        assert!(k.contains(&p), "{p} not kept: {k:?}");
    }
    assert!(!k.contains(&"/usr/share/zoneinfo/Asia/Tokyo"));
    assert!(!k.iter().any(|p| p.starts_with("/tmp")), "{k:?}");
    let dirs: Vec<&str> = n.keep_dirs.iter().map(|k| k.path.as_str()).collect();
    assert_eq!(dirs, ["/root", "/tmp"]);
    assert_eq!(n.applied[0].name, "base");
    assert!(n.applied.iter().any(|a| a.name == "tzdata"), "{:?}", n.applied);
}

#[test]
fn forced_unknown_name_is_an_error_and_trace_profile_works() {
    let fs = Mem::default().file("/opt/app/data.bin", "x").file("/opt/app/other", "y");
    let set = ProfileSet::builtin().unwrap();
    let view = ImageView { fs: &fs, env: &[], roots: &[], workdir: None, user: None };
    assert!(matches!(evaluate(&set, &["nope".into()], &view), Err(ProfileError::Unknown { .. })));
    // A recorded trace is just a profile with exact paths.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("trace.toml");
    std::fs::write(&f, "name = \"trace-app\"\n[detect]\nalways = true\n[keep]\nglobs = [\"/opt/app/data.bin\", \"/opt/app/missing\"]\n").unwrap();
    let mut set = set;
    assert_eq!(set.add_file(&f).unwrap(), "trace-app");
    assert!(set.add_file(&f).is_err(), "same name twice");
    assert_eq!(set.add_file(Path::new("python")).unwrap(), "python");
    assert!(set.add_file(Path::new("no-such-profile")).is_err());
    let n = evaluate(&set, &[], &view).unwrap();
    let k = kept(&n);
    assert!(k.contains(&"/opt/app/data.bin"));
    assert!(!k.contains(&"/opt/app/other"));
    assert!(n.applied.iter().any(|a| a.name == "trace-app"));
}

#[test]
fn excludes_split_a_kept_dir_into_clean_pieces() {
    let fs = Mem::default()
        .file("/py/lib/python3.12/os.py", "")
        .file("/py/lib/python3.12/json/__init__.py", "")
        .file("/py/lib/python3.12/test/test_os.py", "")
        .file("/py/lib/python3.12/unittest/test/t.py", "")
        .file("/py/lib/python3.12/unittest/case.py", "")
        .file("/py/lib/python3.12/site-packages/pip/__init__.py", "")
        .file("/py/lib/python3.12/site-packages/requests/__init__.py", "")
        .file("/py/bin/python3.12", "\x7fELF");
    let n = eval(&fs, &[], &["/py/bin/python3.12"], None, &[]);
    let k = kept(&n);
    assert!(k.contains(&"/py/lib/python3.12/json"), "clean subdir collapsed: {k:?}");
    assert!(k.contains(&"/py/lib/python3.12/os.py"));
    assert!(k.contains(&"/py/lib/python3.12/unittest/case.py"));
    assert!(k.contains(&"/py/lib/python3.12/site-packages/requests"));
    assert!(!k.iter().any(|p| p.contains("/test") || p.contains("/pip")), "{k:?}");
    assert!(!k.contains(&"/py/lib/python3.12"), "not whole: something below is excluded");
}

#[test]
fn python_import_scan() {
    let (m, d) = python::scan_imports("import os, sys as s\nfrom pip._internal import main\nfrom . import x\n  import a.b.c\nx = 1\n");
    assert_eq!(m.into_iter().collect::<Vec<_>>(), ["a", "os", "pip", "sys"]);
    assert!(d.is_none());
    let (_, d) = python::scan_imports("import os\nmod = importlib.import_module(name)\n");
    assert_eq!(d.unwrap().0, 2);
}

#[test]
fn nginx_tokenizer() {
    let s = web::nginx_statements("user www-data;\n# c ; {\nhttp { include /etc/nginx/mime.types; root \"/srv/my site\";\n location / { alias '/a;b'; } }\n");
    let names: Vec<(&str, Vec<&str>)> = s.iter().map(|(d, a)| (d.as_str(), a.iter().map(String::as_str).collect())).collect();
    assert_eq!(
        names,
        vec![
            ("user", vec!["www-data"]),
            ("http", vec![]),
            ("include", vec!["/etc/nginx/mime.types"]),
            ("root", vec!["/srv/my site"]),
            ("location", vec!["/"]),
            ("alias", vec!["/a;b"]),
        ]
    );
}

#[test]
fn malformed_files_give_warnings_not_panics() {
    let fs = Mem::default()
        .file("/etc/nsswitch.conf", "passwd: \u{0}\u{1}[[[ files\nhosts:\n:::\n")
        .file("/app/package.json", "{ not json")
        .file("/app/main.js", "require('x')")
        .file("/usr/bin/node", "\x7fELF")
        .file("/etc/nginx/nginx.conf", "include \"unterminated; root $x/y; load_module modules/none.so;")
        .file("/lib/x86_64-linux-gnu/libc.so.6", "\x7fELFgarbage");
    let n = eval(&fs, &[("LANG", "de_DE.UTF-8"), ("TZ", "Mars/Olympus")], &["/usr/bin/node", "/app/main.js"], Some("/app"), &["glibc", "nginx"]);
    let w = n.warnings.join("\n");
    assert!(w.contains("/app/package.json is not valid package.json"), "{w}");
    assert!(w.contains("de_DE.UTF-8"), "{w}");
    assert!(w.contains("Mars/Olympus"), "{w}");
}

use super::providers::{python, web};

#[test]
fn config_user_home_and_missing_user() {
    let fs = Mem::default().file("/etc/passwd", "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n").file("/etc/group", "app:x:1000:\n").file("/home/app/.cache/pip/x", "c");
    let set = ProfileSet::builtin().unwrap();
    let run = |u: &str| {
        let view = ImageView { fs: &fs, env: &[], roots: &[], workdir: None, user: Some(u) };
        evaluate(&set, &[], &view).unwrap()
    };
    let n = run("app:app");
    assert!(n.keep_dirs.iter().any(|k| k.path == "/home/app"), "{:?}", n.keep_dirs);
    assert!(!n.keep.iter().any(|k| k.path.starts_with("/home/app")), "home contents are not kept");
    assert!(n.warnings.is_empty(), "{:?}", n.warnings);
    let n = run("1000");
    assert!(n.keep_dirs.iter().any(|k| k.path == "/home/app"));
    let n = run("ghost:nogroup");
    assert!(n.warnings.iter().any(|w| w.contains("User ghost:nogroup is not in /etc/passwd")), "{:?}", n.warnings);
    assert!(n.warnings.iter().any(|w| w.contains("group nogroup")), "{:?}", n.warnings);
    assert!(run("4242:4242").warnings.is_empty(), "numeric ids need no entry");
}

#[test]
fn node_resolution_walks_ancestors_and_skips_node_modules_dirs() {
    let fs = Mem::default()
        .file("/app/package.json", r#"{"dependencies":{"a":"1","@s/b":"1"},"devDependencies":{"d":"1"}}"#)
        .file("/app/node_modules/a/package.json", r#"{"dependencies":{"c":"1"}}"#)
        .file("/app/node_modules/a/node_modules/c/package.json", r#"{"dependencies":{"e":"1"}}"#)
        .file("/app/node_modules/e/package.json", "{}")
        .file("/app/node_modules/e/build/Release/e.node", "\x7fELF")
        .link("/app/node_modules/@s/b", "../.pnpm/b@1/node_modules/@s/b")
        .file("/app/node_modules/.pnpm/b@1/node_modules/@s/b/package.json", r#"{"dependencies":{"f":"1"}}"#)
        .file("/app/node_modules/.pnpm/b@1/node_modules/f/package.json", "{}")
        .file("/app/node_modules/.pnpm/d@1/node_modules/d/package.json", "{}")
        .link("/app/node_modules/d", ".pnpm/d@1/node_modules/d")
        .file("/app/node_modules/.prisma/client/index.js", "")
        .file("/usr/bin/node", "\x7fELF");
    let n = eval(&fs, &[], &["/usr/bin/node"], Some("/app"), &[]);
    let k = kept(&n);
    for p in ["/app/package.json", "/app/node_modules/a", "/app/node_modules/e", "/app/node_modules/@s/b", "/app/node_modules/.pnpm/b@1/node_modules/@s/b", "/app/node_modules/.pnpm/b@1/node_modules/f", "/app/node_modules/.prisma"] {
        assert!(k.contains(&p), "{p} not kept: {k:?}");
    }
    assert!(!k.iter().any(|p| p.contains("/d@1") || *p == "/app/node_modules/d"), "{k:?}");
    assert!(n.elf_roots.iter().any(|r| r.path == "/app/node_modules/e/build/Release/e.node"), "native addon: {:?}", n.elf_roots);
    assert_eq!(node::resolve_pkg(&fs, "/app/node_modules/a/node_modules/c", "e").unwrap().1, "/app/node_modules/e");
    assert!(node::resolve_pkg(&fs, "/app/node_modules/a", "../a").is_none(), "names cannot climb");
    assert!(node::resolve_pkg(&fs, "/app/node_modules/a", "a").is_some());
}

#[test]
fn ca_bundles_named_in_env_are_kept() {
    let fs = Mem::default().file("/opt/certs/corp.pem", "PEM").file("/opt/certs/other.pem", "PEM").file("/etc/ssl/certs/ca-certificates.crt", "PEM");
    let n = eval(&fs, &[("SSL_CERT_FILE", "/opt/certs/corp.pem"), ("NODE_EXTRA_CA_CERTS", "/missing.pem")], &[], None, &[]);
    assert!(n.applied.iter().any(|a| a.name == "ca-certificates"));
    let k = kept(&n);
    assert!(k.contains(&"/opt/certs/corp.pem") && k.contains(&"/etc/ssl/certs/ca-certificates.crt"), "{k:?}");
    assert!(!k.contains(&"/opt/certs/other.pem"));
    assert!(n.warnings.iter().any(|w| w.contains("/missing.pem")), "{:?}", n.warnings);
}

#[test]
fn hostile_paths_cannot_keep_the_whole_image() {
    let fs = Mem::default()
        .file("/app/package.json", r#"{"dependencies":{"evil":"1"}}"#)
        .link("/app/node_modules/evil", "../../..")
        .file("/etc/nginx/nginx.conf", "include /; include /usr/*; http { server { root /; location / { alias /usr/; } } }")
        .file("/usr/sbin/nginx", "x")
        .file("/usr/bin/node", "x")
        .file("/usr/lib/big", "x");
    let n = eval(&fs, &[("PYTHONPATH", "/"), ("JAVA_HOME", "/usr")], &["/usr/bin/node", "/usr/sbin/nginx"], Some("/app"), &["node", "nginx", "python", "jvm"]);
    let k = kept(&n);
    assert!(!k.contains(&"/") && !k.contains(&"/usr"), "{k:?}");
    assert!(!k.iter().any(|p| p.starts_with("/usr/lib")), "{k:?}");
    assert!(n.warnings.iter().filter(|w| w.contains("refusing to keep the system directory")).count() >= 3, "{:#?}", n.warnings);
    assert!(n.warnings.iter().any(|w| w.contains("package evil") && w.contains("system directory /")), "{:#?}", n.warnings);
}

use super::providers::node;

/// A config include that cannot be read is a risk naming the file (and line, when the include
/// names it through a run-time variable); one that is read is none.
#[test]
fn unreadable_config_includes_are_risks() {
    let fs = Mem::default()
        .file("/etc/redis/redis.conf", "port 6379\ninclude /etc/redis/local.conf\ninclude /etc/redis/missing.conf\n")
        .file("/etc/redis/local.conf", "maxmemory 10mb\n")
        .file("/etc/apache2/apache2.conf", "ServerRoot /etc/apache2\nInclude ${APACHE_CONFDIR}/extra.conf\nIncludeOptional conf-enabled/*.conf\n");
    let n = eval(&fs, &[], &[], None, &["redis", "apache"]);
    let risks: Vec<(&str, &str)> = n.risks.iter().map(|r| (r.kind, r.at.as_str())).collect();
    assert_eq!(risks, [("config-include", "/etc/apache2/apache2.conf:2"), ("config-include", "/etc/redis/missing.conf")], "{:#?}", n.risks);
    assert!(n.risks.iter().all(|r| r.fix.contains("--keep") && r.fix.contains("--trace")));
}
