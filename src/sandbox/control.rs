//! The host↔init control protocol: one JSON request and one JSON answer per connection to a
//! Unix socket the host bound in the work area before the clone (init inherits the listening
//! socket, so it works after pivot_root). One connection per request lets a probe, a blocking
//! `wait_app` and `stop` run at once from different threads.
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Serialize, Deserialize, Debug)]
pub(super) enum Request {
    /// Run argv inside the container, as the app's user, with the app's env and cwd.
    Exec { argv: Vec<String> },
    /// GET http://127.0.0.1:port/path from inside the container's network namespace.
    Http { port: u16, path: String, ready_timeout_ms: u64 },
    /// Block until the app exits (or `timeout_ms` passes: `None` in the answer).
    WaitApp { timeout_ms: Option<u64> },
    /// End the container.
    Stop,
}

#[derive(Serialize, Deserialize, Debug)]
pub(super) enum Response {
    Exec(ExecAnswer),
    Http(HttpAnswer),
    App(Option<AppExit>),
    Stopped,
    Error(String),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ExecAnswer {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// The app's end: exit code (128+signal when killed) and, with `Spec::capture`, its output.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AppExit {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The probe handle of a running sandbox: `Send + Clone`, usable from any thread.
#[derive(Clone, Debug)]
pub struct Control {
    pub(super) socket: PathBuf,
}

fn fail(msg: impl std::fmt::Display) -> crate::error::Error {
    super::err(msg)
}

impl Control {
    fn call(&self, req: &Request) -> crate::error::Result<Response> {
        let mut s = UnixStream::connect(&self.socket).map_err(|e| fail(format!("the container is gone ({e})")))?;
        let mut line = serde_json::to_vec(req).map_err(fail)?;
        line.push(b'\n');
        s.write_all(&line).map_err(fail)?;
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).map_err(fail)?;
        if answer.is_empty() {
            return Err(fail("the container ended before answering"));
        }
        match serde_json::from_str(&answer).map_err(fail)? {
            Response::Error(e) => Err(fail(e)),
            r => Ok(r),
        }
    }

    /// `docker exec`: argv run inside the container (no shell), its exit code and output.
    pub fn exec(&self, argv: &[String]) -> crate::error::Result<ExecAnswer> {
        match self.call(&Request::Exec { argv: argv.to_vec() })? {
            Response::Exec(a) => Ok(a),
            r => Err(fail(format!("unexpected answer {r:?}"))),
        }
    }

    /// GET 127.0.0.1:PORT/PATH from inside, retrying until the port answers or `ready` passes.
    pub fn http(&self, port: u16, path: &str, ready: Duration) -> crate::error::Result<HttpAnswer> {
        match self.call(&Request::Http { port, path: path.into(), ready_timeout_ms: ready.as_millis() as u64 })? {
            Response::Http(a) => Ok(a),
            r => Err(fail(format!("unexpected answer {r:?}"))),
        }
    }

    /// The app's exit; `None` when `timeout` passed first (the app still runs).
    pub fn wait_app(&self, timeout: Option<Duration>) -> crate::error::Result<Option<AppExit>> {
        match self.call(&Request::WaitApp { timeout_ms: timeout.map(|t| t.as_millis() as u64) })? {
            Response::App(a) => Ok(a),
            r => Err(fail(format!("unexpected answer {r:?}"))),
        }
    }

    /// End the container: init kills every process of its pid namespace and exits.
    pub fn stop(&self) -> crate::error::Result<()> {
        self.call(&Request::Stop).map(|_| ())
    }
}
