//! File contents live in per-layer spool files in the work area; the tree only holds
//! (spool, offset, len) references, so memory does not grow with image size.
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use super::space::SpaceSink;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRef {
    pub spool: u32,
    pub offset: u64,
    pub len: u64,
}

/// Read-only access to the spool files, shared by every stage after unpacking.
#[derive(Clone, Default)]
pub struct ContentStore {
    spools: Vec<Option<Arc<File>>>,
}

impl ContentStore {
    pub fn new(n: usize) -> Self {
        ContentStore { spools: vec![None; n] }
    }
    pub fn set(&mut self, idx: u32, f: File) {
        let idx = idx as usize;
        if idx >= self.spools.len() {
            self.spools.resize(idx + 1, None);
        }
        self.spools[idx] = Some(Arc::new(f));
    }
    /// Append a new spool and return its index.
    pub fn push(&mut self, f: File) -> u32 {
        self.spools.push(Some(Arc::new(f)));
        (self.spools.len() - 1) as u32
    }
    /// Store new content (a rewritten /etc/passwd, say) in a fresh spool of its own.
    pub fn add_bytes(&mut self, bytes: &[u8]) -> io::Result<ContentRef> {
        let mut f = tempfile::tempfile()?;
        f.write_all(bytes)?;
        let idx = self.push(f);
        Ok(ContentRef { spool: idx, offset: 0, len: bytes.len() as u64 })
    }

    /// Frees ranges of the spools on a background thread, for the store's last reader
    /// (a freed range reads back as zeros).
    pub fn releaser(&self) -> Releaser {
        let spools = self.spools.clone();
        let (tx, rx) = std::sync::mpsc::channel::<(u32, u64, u64)>();
        let worker = std::thread::spawn(move || {
            use nix::fcntl::{fallocate, FallocateFlags as F};
            for (spool, offset, len) in rx {
                if let Some(Some(f)) = spools.get(spool as usize) {
                    // Only frees space: where the filesystem cannot punch holes, it stays in use.
                    let _ = fallocate(f.as_ref(), F::FALLOC_FL_PUNCH_HOLE | F::FALLOC_FL_KEEP_SIZE, offset as i64, len as i64);
                }
            }
        });
        Releaser { tx: Some(tx), worker: Some(worker) }
    }

    pub fn reader(&self, c: &ContentRef) -> io::Result<ContentReader> {
        let file = self
            .spools
            .get(c.spool as usize)
            .and_then(|f| f.clone())
            .ok_or_else(|| io::Error::other(format!("content spool {} missing", c.spool)))?;
        Ok(ContentReader { file, pos: c.offset, end: c.offset + c.len })
    }
    pub fn read_all(&self, c: &ContentRef) -> io::Result<Vec<u8>> {
        let mut v = Vec::with_capacity(c.len as usize);
        self.reader(c)?.read_to_end(&mut v)?;
        Ok(v)
    }
    /// Read at most `max` leading bytes (for magic sniffing and `#!` lines).
    pub fn read_head(&self, c: &ContentRef, max: usize) -> io::Result<Vec<u8>> {
        let n = (c.len as usize).min(max);
        let mut v = vec![0u8; n];
        self.reader(c)?.read_exact(&mut v)?;
        Ok(v)
    }
}

/// A positional reader over one spooled file content (pread, so readers can run in parallel).
pub struct ContentReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl ContentReader {
    /// A reader over `len` bytes of `file` from `offset` (also used for archive members).
    pub fn new(file: Arc<File>, offset: u64, len: u64) -> Self {
        ContentReader { file, pos: offset, end: offset + len }
    }
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(left) as usize;
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "spool file shorter than recorded"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Frees spool space a reader is done with, off the reader's thread. Freeing blocks can wait
/// on the disk (on ext4 mounted with `discard`, each freed range is a synchronous discard:
/// about 1 s per 4 GB here, nearly all of it idle): done at the end, as closing the spools
/// did, it was the last second of a squash with both cores idle.
pub struct Releaser {
    tx: Option<std::sync::mpsc::Sender<(u32, u64, u64)>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Releaser {
    pub fn release(&self, spool: u32, offset: u64, len: u64) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((spool, offset, len));
        }
    }
}

impl Drop for Releaser {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Appends contents to one spool file.
pub struct SpoolWriter {
    idx: u32,
    out: SpaceSink<File>,
    /// A buffer initialised once and read into directly. `io::copy` into a `BufWriter` zeroes
    /// the writer's spare capacity on every call (once per file: 3% of a squash in `perf`).
    buf: Box<[u8]>,
    filled: usize,
    offset: u64,
}

const SPOOL_BUF: usize = 1 << 20;

impl SpoolWriter {
    pub fn new(idx: u32, file: File) -> Self {
        SpoolWriter { idx, out: SpaceSink::new(file), buf: vec![0; SPOOL_BUF].into_boxed_slice(), filled: 0, offset: 0 }
    }
    /// Copy `r` to the spool; returns where it went.
    pub fn append(&mut self, r: &mut impl Read) -> io::Result<ContentRef> {
        let start = self.offset;
        loop {
            if self.filled == self.buf.len() {
                self.flush_buf()?;
            }
            let n = match r.read(&mut self.buf[self.filled..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.filled += n;
            self.offset += n as u64;
        }
        Ok(ContentRef { spool: self.idx, offset: start, len: self.offset - start })
    }
    pub fn append_bytes(&mut self, b: &[u8]) -> io::Result<ContentRef> {
        self.append(&mut &b[..])
    }
    fn flush_buf(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf[..self.filled])?;
        self.filled = 0;
        Ok(())
    }
    /// The spool file, or `Err(Full)` with the bytes this layer needed when the work area
    /// filled up (the parse went on without writing, to count them).
    pub fn finish(mut self) -> Result<File, SpoolError> {
        self.flush_buf().map_err(SpoolError::Io)?;
        match self.out.needed() {
            Some(need) => Err(SpoolError::Full(need)),
            None => Ok(self.out.into_inner()),
        }
    }
}

#[derive(Debug)]
pub enum SpoolError {
    Io(io::Error),
    /// The work area filled up; the layer's content needed this many bytes.
    Full(u64),
}
