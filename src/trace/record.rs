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

/// Streams events into `path` (written to a temporary file renamed on `finish`, so an
/// interrupted trace leaves nothing).
pub struct Writer {
    out: std::io::BufWriter<tempfile::NamedTempFile>,
    path: PathBuf,
    count: u64,
}

impl Writer {
    pub fn create(path: &Path, header: &Header) -> Result<Writer> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(path, e))?;
        let mut w = Writer { out: std::io::BufWriter::new(tmp), path: path.to_path_buf(), count: 0 };
        let head = serde_json::to_string(header).map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
        // `{"config_digest":…,"imgslim_version":…,"events":[` then one event per line.
        let open = format!("{},\"events\":[\n", head.trim_end_matches('}'));
        w.out.write_all(open.as_bytes()).map_err(|e| Error::io(path, e))?;
        Ok(w)
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
        let tmp = self.out.into_inner().map_err(|e| Error::io(&p, e.into_error()))?;
        tmp.persist(&p).map_err(|e| Error::io(&p, e.error))?;
        Ok(self.count)
    }
}

pub fn read(path: &Path) -> Result<TraceFile> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_reader(std::io::BufReader::new(f)).map_err(|e| Error::Other(format!("{}: not an imgslim trace: {e}", path.display())))
}
