//! What Python (and, for literal paths, JavaScript) source says it loads at run time, read line
//! by line with regexes: `ctypes` and the libraries `find_library`/`CDLL` name, imports made
//! with `importlib.import_module`/`__import__`, and absolute paths written as string literals.
use regex::Regex;
use std::sync::OnceLock;

/// Findings of one source file; every item carries its 1-based line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    pub ctypes: bool,
    /// `find_library('z')` → "z" (a short name); `CDLL('libz.so.1')` → "libz.so.1" or a path.
    pub libs: Vec<(usize, LibName)>,
    /// `CDLL(x)`/`find_library(x)` with a name built at run time.
    pub libs_dynamic: Vec<(usize, String)>,
    /// `importlib.import_module('a.b')` / `__import__('a.b')`.
    pub imports: Vec<(usize, String)>,
    /// Imports (and `exec`) of names built at run time.
    pub imports_dynamic: Vec<(usize, String)>,
    /// Absolute paths in string literals (`open("/opt/app/conf.json")`).
    pub paths: Vec<(usize, String)>,
    /// Variables assigned a literal `find_library(…)`.
    pub lib_vars: std::collections::BTreeSet<String>,
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub enum LibName {
    /// `find_library`'s argument: lib<NAME>.so*.
    Short(String),
    /// A file name or path given to `CDLL`/`LoadLibrary`.
    File(String),
}

struct Res {
    find_library: Regex,
    cdll: Regex,
    lib_var: Regex,
    import: Regex,
    path: Regex,
}

fn res() -> &'static Res {
    static R: OnceLock<Res> = OnceLock::new();
    R.get_or_init(|| Res {
        find_library: Regex::new(r#"find_library\(\s*(?:(['"])([^'"\s]+)['"]\s*[,)]|(.))"#).expect("regex"),
        cdll: Regex::new(r#"\b(?:CDLL|PyDLL|LoadLibrary)\(\s*(?:(['"])([^'"\s]+)['"]\s*[,)]|(find_library\()|(([A-Za-z_]\w*)\s*[,)])|(.))"#).expect("regex"),
        lib_var: Regex::new(r#"^([A-Za-z_]\w*)\s*=\s*[\w.]*find_library\(\s*['"]"#).expect("regex"),
        import: Regex::new(r#"\b(?:import_module|__import__)\(\s*(?:(['"])([A-Za-z_][\w.]*)['"]\s*[,)]|(.))"#).expect("regex"),
        path: Regex::new(r#"(?:^|[^\w\\])(['"])(/[A-Za-z0-9_.@+-][^'"\s*?${}<>|]*)['"]"#).expect("regex"),
    })
}

fn short(line: &str) -> String {
    line.trim().chars().take(120).collect()
}

/// Scan Python source (`python` true) or JavaScript (literal paths only).
pub fn scan(src: &str, python: bool) -> Scan {
    let r = res();
    let mut s = Scan::default();
    for (i, raw) in src.lines().enumerate() {
        let (n, line) = (i + 1, raw.trim());
        if line.starts_with('#') || line.starts_with("//") {
            continue;
        }
        for c in r.path.captures_iter(line) {
            s.paths.push((n, c[2].trim_end_matches('/').to_string()));
        }
        if !python {
            continue;
        }
        if line.starts_with("import ctypes") || line.starts_with("from ctypes") || (line.starts_with("import ") && line.contains(" ctypes")) {
            s.ctypes = true;
        }
        scan_loader_calls(r, &mut s, n, line);
    }
    s
}

fn scan_loader_calls(r: &Res, s: &mut Scan, n: usize, line: &str) {
    for c in r.find_library.captures_iter(line) {
        match c.get(2) {
            Some(name) => s.libs.push((n, LibName::Short(name.as_str().to_string()))),
            None => s.libs_dynamic.push((n, short(line))),
        }
    }
    // `name = ctypes.util.find_library('x')`: a later `CDLL(name)` loads that literal.
    if let Some(c) = r.lib_var.captures(line) {
        s.lib_vars.insert(c[1].to_string());
    }
    for c in r.cdll.captures_iter(line) {
        if let Some(name) = c.get(2) {
            s.libs.push((n, LibName::File(name.as_str().to_string())));
        } else if c.get(3).is_none() && !line.contains("find_library(") && !c.get(5).is_some_and(|v| s.lib_vars.contains(v.as_str())) {
            s.libs_dynamic.push((n, short(line)));
        }
    }
    for c in r.import.captures_iter(line) {
        match c.get(2) {
            Some(name) => s.imports.push((n, name.as_str().to_string())),
            None => s.imports_dynamic.push((n, short(line))),
        }
    }
    if line.contains("exec(") && !line.contains(".exec(") && !line.starts_with("def ") {
        s.imports_dynamic.push((n, short(line)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctypes_libraries_imports_and_paths() {
        let src = r#"import ctypes, ctypes.util
import importlib, sys
sys.path.insert(0, "/opt/plugins")
gmp = ctypes.CDLL(ctypes.util.find_library('gmp'))
name2 = ctypes.util.find_library('m'); m = ctypes.CDLL(name2)
z = ctypes.cdll.LoadLibrary("libz.so.1")
me = ctypes.CDLL(name)
lib = ctypes.util.find_library(os.environ["LIB"])
plug = importlib.import_module('plugins.hello')
m = __import__("json")
other = importlib.import_module(f"p.{x}"); more = importlib.import_module('plugins.' + name)
# open("/not/this")
cfg = open('/opt/appdata/config.json')
url = "https://example.com/x"; rx = r"\/x"
"#;
        let s = scan(src, true);
        assert!(s.ctypes);
        assert_eq!(s.libs, [(4, LibName::Short("gmp".into())), (5, LibName::Short("m".into())), (6, LibName::File("libz.so.1".into()))]);
        assert_eq!(s.libs_dynamic.iter().map(|l| l.0).collect::<Vec<_>>(), [7, 8]);
        assert_eq!(s.imports, [(9, "plugins.hello".to_string()), (10, "json".to_string())]);
        assert_eq!(s.imports_dynamic.iter().map(|l| l.0).collect::<Vec<_>>(), [11, 11]);
        assert_eq!(s.paths, [(3, "/opt/plugins".to_string()), (13, "/opt/appdata/config.json".to_string())]);
    }

    #[test]
    fn javascript_paths_only() {
        let s = scan("const c = require('/srv/conf/app.json');\nfs.readFileSync(`/x`)\nimport_module('x')\n", false);
        assert_eq!(s.paths, [(1, "/srv/conf/app.json".to_string())]);
        assert!(s.imports.is_empty() && !s.ctypes);
    }
}
