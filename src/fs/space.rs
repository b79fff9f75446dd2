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
