//! Writing where the filesystem may fill up. A step that runs out of space keeps going
//! without writing, counting what it would have written, so the error can say how much the
//! step needed rather than only that the disk is full.
use std::io::{self, Write};

/// ENOSPC or EDQUOT: the filesystem (or the user's quota) is full.
pub fn is_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// A writer that, once its inner writer reports a full filesystem, discards the rest and
/// counts it. `needed()` then gives the bytes the whole step wanted to write.
pub struct SpaceSink<W: Write> {
    inner: W,
    wanted: u64,
    full: bool,
}

impl<W: Write> SpaceSink<W> {
    pub fn new(inner: W) -> Self {
        SpaceSink { inner, wanted: 0, full: false }
    }
    /// The bytes the step needed in all, when the filesystem filled up; None otherwise.
    pub fn needed(&self) -> Option<u64> {
        self.full.then_some(self.wanted)
    }
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for SpaceSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.full {
            match self.inner.write(buf) {
                Ok(n) => {
                    self.wanted += n as u64;
                    return Ok(n);
                }
                Err(e) if is_full(&e) => self.full = true,
                Err(e) => return Err(e),
            }
        }
        self.wanted += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.full {
            return Ok(());
        }
        match self.inner.flush() {
            Err(e) if is_full(&e) => {
                self.full = true;
                Ok(())
            }
            r => r,
        }
    }
}

/// A file written front to back whose dirty pages are sent to disk as it grows, so the
/// `sync_all` that makes an output durable finds little left to write. Without it a squash's
/// last seconds were the whole layer's writeback, with both cores idle.
pub struct EarlyWriteback {
    file: std::fs::File,
    written: u64,
    started: u64,
}

/// Writeback starts each time this much more has been written.
const WRITEBACK_STEP: u64 = 16 << 20;

impl EarlyWriteback {
    pub fn new(file: std::fs::File) -> Self {
        EarlyWriteback { file, written: 0, started: 0 }
    }
    pub fn into_inner(self) -> std::fs::File {
        self.file
    }
    fn start_writeback(&mut self) {
        use std::os::fd::AsRawFd;
        let len = (self.written - self.started) as libc::off64_t;
        // SAFETY: a plain syscall on an fd this struct owns. It only starts asynchronous
        // writeback (a hint): an I/O error still surfaces at `sync_all`, so the result is ignored.
        unsafe { libc::sync_file_range(self.file.as_raw_fd(), self.started as libc::off64_t, len, libc::SYNC_FILE_RANGE_WRITE) };
        self.started = self.written;
    }
}

impl Write for EarlyWriteback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITEBACK_STEP {
            self.start_writeback();
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts `room` bytes, then fails as a full disk does.
    struct Small {
        room: usize,
    }
    impl Write for Small {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn counts_what_the_step_needed_after_the_disk_filled() {
        let mut s = SpaceSink::new(Small { room: 1000 });
        for _ in 0..10 {
            s.write_all(&[7u8; 300]).unwrap();
        }
        s.flush().unwrap();
        assert_eq!(s.needed(), Some(3000));
        let mut roomy = SpaceSink::new(Small { room: 5000 });
        roomy.write_all(&[1u8; 3000]).unwrap();
        assert_eq!(roomy.needed(), None);
    }

    #[test]
    fn other_errors_still_fail() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(SpaceSink::new(Broken).write_all(b"x").is_err());
    }
}
