//! Error type shared by the stages. Every variant names the file, blob or entry at fault,
//! and maps to the CLI exit code contract: 1 for input/output or image problems, 2 for usage
//! errors, 3 for a refusal by policy (`--strict` risks, `--max-size`, a failed verify),
//! 130/143 when interrupted by SIGINT/SIGTERM.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user asked for something that cannot be done (bad flag combination, missing platform…).
    #[error("{0}")]
    Usage(String),
    /// The image is malformed, corrupt or hostile. `what` names the file/blob/entry.
    #[error("{what}: {msg}")]
    Input { what: String, msg: String },
    /// An I/O error on a named path.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A filesystem filled up; `need` is what the whole step needed there, in bytes.
    #[error("{}: no space left on device (the step needed {need} bytes)", path.display())]
    Full { path: PathBuf, need: u64 },
    #[error("{0}")]
    Other(String),
    /// The run worked but its result breaks a rule the user set (`--strict`, `--max-size`,
    /// a failed `verify`). Nothing is written.
    #[error("{0}")]
    Policy(String),
    /// SIGINT or SIGTERM arrived; the number is the signal.
    #[error("interrupted by signal {0}")]
    Interrupted(i32),
}

impl Error {
    pub fn input(what: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Input { what: what.into(), msg: msg.into() }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Policy(_) => 3,
            Error::Interrupted(sig) => 128 + sig,
            _ => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a path to an `io::Result`.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}
impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
