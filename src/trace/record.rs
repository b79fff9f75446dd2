//! The trace file: one JSON document, a header and the events, written as a stream (the tracer
//! never holds the events in memory) and read back whole for resolution.
use super::table::Op;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A path as raw bytes: JSON text when it is UTF-8, else the byte list (names need not be UTF-8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RawPath {
    Text(String),
    Bytes(Vec<u8>),
}

impl RawPath {
    pub fn from_bytes(b: Vec<u8>) -> RawPath {
        match String::from_utf8(b) {
            Ok(s) => RawPath::Text(s),
            Err(e) => RawPath::Bytes(e.into_bytes()),
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            RawPath::Text(s) => s.as_bytes(),
            RawPath::Bytes(b) => b,
        }
    }
    pub fn lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

/// One traced syscall on one path.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    pub syscall: String,
    pub op: Op,
    /// Absolute inside the container: the literal argument joined to the cwd or dirfd it was
    /// relative to (read at syscall entry), not cleaned: `..` and symlinks are resolved later.
    pub path: RawPath,
    /// Second path of a rename/link (the new name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<RawPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
    /// "ok" or the errno name (ENOENT, EACCES…).
    pub result: String,
    /// Pid inside the container's pid namespace.
    pub pid: i32,
    pub exe: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    pub config_digest: String,
    pub imgslim_version: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TraceFile {
    #[serde(flatten)]
    pub header: Header,
    pub events: Vec<Event>,
}

/// Streams events into `path`. The file is written unnamed (O_TMPFILE) in `path`'s directory
/// and linked in on `finish`, so a run killed at any moment, SIGKILL included, leaves nothing
/// there. Filesystems without O_TMPFILE get a named temporary file beside `path` instead.
pub struct Writer {
    out: std::io::BufWriter<Staged>,
    path: PathBuf,
    count: u64,
}

enum Staged {
    Unnamed(std::fs::File),
    Named(tempfile::NamedTempFile),
}

impl Write for Staged {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Staged::Unnamed(f) => f.write(b),
            Staged::Named(f) => f.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Staged::Unnamed(f) => f.flush(),
            Staged::Named(f) => f.flush(),
        }
    }
}

impl Staged {
    fn new(dir: &Path) -> std::io::Result<Staged> {
        use std::os::unix::fs::OpenOptionsExt;
        let unnamed = std::fs::OpenOptions::new().write(true).mode(0o666).custom_flags(libc::O_TMPFILE).open(dir);
        match unnamed {
            Ok(f) => Ok(Staged::Unnamed(f)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)) => tempfile::NamedTempFile::new_in(dir).map(Staged::Named),
            Err(e) => Err(e),
        }
    }

    /// Give the file its name, replacing what was there.
    fn place(self, path: &Path, dir: &Path) -> std::io::Result<()> {
        let f = match self {
            Staged::Named(t) => return t.persist(path).map(|_| ()).map_err(|e| e.error),
            Staged::Unnamed(f) => f,
        };
        let link = |to: &Path| link_fd(&f, to);
        match link(path) {
            Ok(()) => Ok(()),
            // An existing file is replaced atomically: link under a fresh name, rename over it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let tmp = tempfile::Builder::new().prefix(".imgslim-trace-").make_in(dir, |p| link(p))?;
                let p = tmp.into_temp_path();
                std::fs::rename(&p, path)?;
                std::mem::forget(p);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// linkat(2) of an O_TMPFILE file through its /proc/self/fd link (AT_EMPTY_PATH would need
/// CAP_DAC_READ_SEARCH).
fn link_fd(f: &std::fs::File, to: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(format!("/proc/self/fd/{}", f.as_raw_fd()))?;
    let to = std::ffi::CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both are NUL-terminated strings that outlive the call.
    match unsafe { libc::linkat(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::AT_SYMLINK_FOLLOW) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

impl Writer {
    pub fn create(path: &Path, header: &Header) -> Result<Writer> {
        let staged = Staged::new(Self::dir(path)).map_err(|e| Error::io(path, e))?;
        let mut w = Writer { out: std::io::BufWriter::new(staged), path: path.to_path_buf(), count: 0 };
        let head = serde_json::to_string(header).map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
        // `{"config_digest":…,"imgslim_version":…,"events":[` then one event per line.
        let open = format!("{},\"events\":[\n", head.trim_end_matches('}'));
        w.out.write_all(open.as_bytes()).map_err(|e| Error::io(path, e))?;
        Ok(w)
    }

    fn dir(path: &Path) -> &Path {
        path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
    }

    pub fn push(&mut self, ev: &Event) -> std::io::Result<()> {
        if self.count > 0 {
            self.out.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut self.out, ev)?;
        self.count += 1;
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn finish(mut self) -> Result<u64> {
        let p = self.path.clone();
        self.out.write_all(b"\n]}\n").map_err(|e| Error::io(&p, e))?;
        let staged = self.out.into_inner().map_err(|e| Error::io(&p, e.into_error()))?;
        staged.place(&p, Self::dir(&p)).map_err(|e| Error::io(&p, e))?;
        Ok(self.count)
    }
}

pub fn read(path: &Path) -> Result<TraceFile> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_reader(std::io::BufReader::new(f)).map_err(|e| Error::Other(format!("{}: not an imgslim trace: {e}", path.display())))
}
