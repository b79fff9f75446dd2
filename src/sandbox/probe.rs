//! Probes: what drives the app while it runs, shared by `run`, `trace` and `verify`.
//! `--http PORT[/PATH]` GETs from inside the container's network namespace, `--exec 'CMD'` runs
//! a command inside it (split like a POSIX shell by `shell-words`, quotes respected, nothing
//! expanded, no shell needed), `--run-for SECS` lets the app run, and the app's own exit ends
//! a command-line image.
use super::{AppExit, Control};
use crate::error::{Error, Result};
use std::time::Duration;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ProbeArgs {
    /// GET http://127.0.0.1:PORT/PATH inside the container (repeatable), once the port answers.
    #[arg(long = "http", value_name = "PORT[/PATH]")]
    pub http: Vec<String>,
    /// Run CMD inside the running container, like `docker exec` (repeatable). Split into words
    /// like a POSIX shell (quotes respected, nothing expanded) and run without a shell.
    #[arg(long = "exec", value_name = "CMD")]
    pub exec: Vec<String>,
    /// Let the app run this long (after the probes); a command-line app may end sooner.
    #[arg(long = "run-for", value_name = "SECS")]
    pub run_for: Option<f64>,
    /// How long an --http probe waits for its port to answer.
    #[arg(long = "ready-timeout", value_name = "SECS", default_value_t = 30.0)]
    pub ready_timeout: f64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Http { port: u16, path: String },
    Exec { argv: Vec<String> },
}

impl Probe {
    /// How the probe is named in tables, reports and traces: `GET :8080/db`, `exec ls -l /`.
    pub fn label(&self) -> String {
        match self {
            Probe::Http { port, path } => format!("GET :{port}{path}"),
            Probe::Exec { argv } => format!("exec {}", shell_words::join(argv)),
        }
    }
}

fn secs(v: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| Error::Usage(format!("{flag} {v}: expected a number of seconds")))
}

impl ProbeArgs {
    /// The probes in the order they run: HTTP first (they wait for the server), then exec.
    pub fn probes(&self) -> Result<Vec<Probe>> {
        let mut v = Vec::new();
        for h in &self.http {
            let (port, path) = match h.split_once('/') {
                Some((p, rest)) => (p, format!("/{rest}")),
                None => (h.as_str(), "/".to_string()),
            };
            let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| Error::Usage(format!("--http '{h}': expected PORT[/PATH], e.g. 8080/health")))?;
            v.push(Probe::Http { port, path });
        }
        for e in &self.exec {
            let argv = shell_words::split(e).map_err(|err| Error::Usage(format!("--exec '{e}': {err}")))?;
            if argv.is_empty() {
                return Err(Error::Usage("--exec '': empty command".into()));
            }
            v.push(Probe::Exec { argv });
        }
        Ok(v)
    }
    pub fn ready(&self) -> Result<Duration> {
        secs(self.ready_timeout, "--ready-timeout")
    }
    pub fn run_for(&self) -> Result<Option<Duration>> {
        self.run_for.map(|s| secs(s, "--run-for")).transpose()
    }
}

/// One probe's answer, rendered so two runs compare byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub label: String,
    /// `status=200 content-type=… ` / `exit=0`, then the body or stdout.
    pub head: String,
    pub body: Vec<u8>,
    /// Shown, not compared (an exec probe's stderr).
    pub stderr: Vec<u8>,
}

impl Answer {
    fn failed(label: String, e: &Error) -> Answer {
        Answer { label, head: format!("failed: {e}"), body: Vec::new(), stderr: Vec::new() }
    }
    pub fn app(a: Option<&AppExit>) -> Answer {
        match a {
            Some(a) => Answer { label: "app".into(), head: format!("exit={}", a.code), body: [&a.stdout[..], b"\n--- stderr ---\n", &a.stderr[..]].concat(), stderr: Vec::new() },
            None => Answer { label: "app".into(), head: "still running (stopped)".into(), body: Vec::new(), stderr: Vec::new() },
        }
    }
    /// A one-line summary for tables.
    pub fn summary(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let first = body.lines().next().unwrap_or("");
        let first: String = first.chars().take(40).collect();
        format!("{} {}B {first:?}", self.head, self.body.len())
    }
}

/// Run every probe against a running sandbox, in order. `on_probe` hears each probe's label
/// before it starts and `None` after the last (the tracer tags events with it).
pub fn drive(ctl: &Control, args: &ProbeArgs, on_probe: &mut dyn FnMut(Option<&str>)) -> Result<Vec<Answer>> {
    let ready = args.ready()?;
    let mut answers = Vec::new();
    for p in args.probes()? {
        let label = p.label();
        on_probe(Some(&label));
        let a = match &p {
            Probe::Http { port, path } => ctl.http(*port, path, ready).map(|h| Answer {
                label: label.clone(),
                head: format!("status={} content-type={}", h.status, h.content_type.as_deref().unwrap_or("-")),
                body: h.body,
                stderr: Vec::new(),
            }),
            Probe::Exec { argv } => ctl.exec(argv).map(|x| Answer { label: label.clone(), head: format!("exit={}", x.code), body: x.stdout, stderr: x.stderr }),
        };
        answers.push(a.unwrap_or_else(|e| Answer::failed(label, &e)));
    }
    on_probe(None);
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn probes_parse_like_a_shell_without_expanding() {
        let a = ProbeArgs { http: vec!["8080/db?x=1".into(), "80".into()], exec: vec![r#"sh -c 'echo "$HOME"' a\ b"#.into()], ..Default::default() };
        let p = a.probes().unwrap();
        assert_eq!(p[0], Probe::Http { port: 8080, path: "/db?x=1".into() });
        assert_eq!(p[1], Probe::Http { port: 80, path: "/".into() });
        assert_eq!(p[2], Probe::Exec { argv: vec!["sh".into(), "-c".into(), "echo \"$HOME\"".into(), "a b".into()] });
        assert_eq!(p[2].label(), r#"exec sh -c 'echo "$HOME"' 'a b'"#);
        for bad in [ProbeArgs { http: vec!["x/".into()], ..Default::default() }, ProbeArgs { exec: vec!["'open".into()], ..Default::default() }] {
            assert!(matches!(bad.probes(), Err(Error::Usage(_))));
        }
    }
}
