//! The app's process as `docker run` would start it: Entrypoint + Cmd (or the given args), the
//! image's Env, WorkingDir and User (resolved against the image's /etc/passwd and /etc/group),
//! with `--entrypoint`, `--env` and `--user` overriding them.
use crate::error::{Error, Result};
use crate::fs::{ContentStore, Data, Node, Tree};
use crate::image::config;
use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (only settable when imgslim runs as root: rootless maps one gid).
    pub groups: Vec<u32>,
}

#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub entrypoint: Option<Vec<String>>,
    /// Replace Cmd (`imgslim run IMAGE -- ARGS…`).
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Process {
    pub fn from_image(cfg: &Value, tree: &Tree, store: &ContentStore, ov: &Overrides) -> Result<Process> {
        let argv = command(cfg, ov);
        if argv.is_empty() {
            return Err(Error::Usage("the image has no Entrypoint or Cmd: give a command after --".into()));
        }
        let user = ov.user.clone().or_else(|| config::runtime(cfg, "User").and_then(Value::as_str).map(str::to_string)).unwrap_or_default();
        let passwd = read_text(tree, store, "etc/passwd");
        let group = read_text(tree, store, "etc/group");
        let (uid, gid, home) = resolve_user(&user, &passwd, &group)?;
        let mut env = config::string_list(config::runtime(cfg, "Env"));
        for e in &ov.env {
            if !e.contains('=') {
                return Err(Error::Usage(format!("--env '{e}': expected KEY=VALUE")));
            }
            set_env(&mut env, e);
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.into());
        }
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={home}"));
        }
        let cwd = config::runtime(cfg, "WorkingDir").and_then(Value::as_str).filter(|s| s.starts_with('/')).unwrap_or("/").to_string();
        let groups = supplementary(&group, &user, gid);
        Ok(Process { argv, env, cwd, uid, gid, groups })
    }

    /// The PATH the command is looked up in (the container's, as Docker does).
    pub fn path_var(&self) -> &str {
        self.env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(&DEFAULT_PATH[5..])
    }
}

fn command(cfg: &Value, ov: &Overrides) -> Vec<String> {
    let (entry, cmd) = match &ov.entrypoint {
        // Docker: --entrypoint resets the image's Cmd.
        Some(e) => (e.clone(), Vec::new()),
        None => (config::string_list(config::runtime(cfg, "Entrypoint")), config::string_list(config::runtime(cfg, "Cmd"))),
    };
    let tail = if ov.args.is_empty() { cmd } else { ov.args.clone() };
    entry.into_iter().chain(tail).collect()
}

fn set_env(env: &mut Vec<String>, kv: &str) {
    let key = kv.split('=').next().unwrap_or("");
    env.retain(|e| e.split('=').next() != Some(key));
    env.push(kv.to_string());
}

/// A small text file of the image (no symlink followed: /etc/passwd is a plain file).
fn read_text(tree: &Tree, store: &ContentStore, path: &str) -> String {
    let Some(id) = tree.lookup_path(path.as_bytes()) else { return String::new() };
    match tree.node(id) {
        Node::Leaf(ino) => match &tree.inode(*ino).data {
            Data::File { content } if content.len < 1 << 22 => store.read_all(content).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default(),
            _ => String::new(),
        },
        Node::Dir { .. } => String::new(),
    }
}

/// `user[:group]`, each a name or a number, as Docker resolves it; returns (uid, gid, home).
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<(u32, u32, String)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() >= 6 && (f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u)));
    let (uid, mut gid, home) = match (u, &entry) {
        ("", _) => (0, 0, "/root".to_string()),
        (_, Some(f)) => (num(f[2], spec)?, num(f[3], spec)?, f[5].to_string()),
        (_, None) => match u.parse::<u32>() {
            Ok(n) => (n, n, "/".to_string()),
            Err(_) => return Err(Error::Usage(format!("user '{u}' is not in the image's /etc/passwd"))),
        },
    };
    if u.is_empty() {
        gid = 0;
    }
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let f = group.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() >= 3 && f[0] == g);
                match f {
                    Some(f) => num(f[2], spec)?,
                    None => return Err(Error::Usage(format!("group '{g}' is not in the image's /etc/group"))),
                }
            }
        };
    }
    Ok((uid, gid, home))
}

fn num(s: &str, spec: &str) -> Result<u32> {
    s.parse().map_err(|_| Error::input("/etc/passwd", format!("bad id '{s}' for user '{spec}'")))
}

/// Groups listing the user by name, plus the primary one.
fn supplementary(group: &str, user: &str, gid: u32) -> Vec<u32> {
    let name = user.split(':').next().unwrap_or("");
    let mut v = vec![gid];
    for f in group.lines().map(|l| l.split(':').collect::<Vec<_>>()).filter(|f| f.len() >= 4) {
        if !name.is_empty() && f[3].split(',').any(|m| m == name) {
            if let Ok(n) = f[2].parse::<u32>() {
                if !v.contains(&n) {
                    v.push(n);
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:10001:10002:app:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:app\napp:x:10002:\n";

    #[test]
    fn users_resolve_like_docker() {
        assert_eq!(resolve_user("", PASSWD, GROUP).unwrap(), (0, 0, "/root".into()));
        assert_eq!(resolve_user("app", PASSWD, GROUP).unwrap(), (10001, 10002, "/home/app".into()));
        assert_eq!(resolve_user("10001", PASSWD, GROUP).unwrap(), (10001, 10002, "/home/app".into()));
        assert_eq!(resolve_user("4242:7", PASSWD, GROUP).unwrap(), (4242, 7, "/".into()));
        assert_eq!(resolve_user("app:staff", PASSWD, GROUP).unwrap(), (10001, 50, "/home/app".into()));
        assert!(resolve_user("nobody", PASSWD, GROUP).is_err());
        assert_eq!(supplementary(GROUP, "app", 10002), vec![10002, 50]);
    }

    #[test]
    fn entrypoint_override_resets_cmd_and_args_replace_cmd() {
        let cfg = serde_json::json!({"config": {"Entrypoint": ["/e"], "Cmd": ["c"]}});
        let mut ov = Overrides::default();
        assert_eq!(command(&cfg, &ov), ["/e", "c"]);
        ov.args = vec!["x".into()];
        assert_eq!(command(&cfg, &ov), ["/e", "x"]);
        ov.args.clear();
        ov.entrypoint = Some(vec!["/sh".into()]);
        assert_eq!(command(&cfg, &ov), ["/sh"]);
    }
}
