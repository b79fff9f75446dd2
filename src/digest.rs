//! SHA-256 digests: parsing `sha256:<hex>` strings, and hashing while streaming so no stage
//! reads a blob twice.
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parse a digest string; only sha256 is accepted (the spec makes it mandatory, and we
    /// build blob paths from the hex, so it must be strictly validated).
    pub fn parse(s: &str) -> Option<Digest> {
        let hex = s.strip_prefix("sha256:")?;
        if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Some(Digest(s.to_string()))
        } else {
            None
        }
    }
    pub fn from_hasher(h: Sha256) -> Digest {
        Digest(format!("sha256:{}", hex::encode(h.finalize())))
    }
    pub fn of_bytes(b: &[u8]) -> Digest {
        let mut h = Sha256::new();
        h.update(b);
        Digest::from_hasher(h)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }
    /// Layout-relative blob path, e.g. `blobs/sha256/ab…`.
    pub fn blob_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex())
    }
    /// Short form for human output.
    pub fn short(&self) -> &str {
        &self.0[..19]
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Counts and hashes everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Sha256::new(), count: 0 }
    }
    /// Read the rest of the stream (tar padding after the end-of-archive blocks, say) so the
    /// digest covers every byte, then return it with the byte count.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Digest::from_hasher(self.hasher), self.count))
    }
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Read to the end of the stream, hashing everything.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }
    /// The digest of what was read so far, the byte count, and the inner reader.
    pub fn into_parts(self) -> (Digest, u64, R) {
        (Digest::from_hasher(self.hasher), self.count, self.inner)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Counts and hashes everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), count: 0 }
    }
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parse_rejects_bad_digests() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert!(Digest::parse(&good).is_some());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_none());
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(63))).is_none());
        assert!(Digest::parse(&format!("sha256:../{}", "a".repeat(61))).is_none());
        assert!(Digest::parse(&format!("sha512:{}", "a".repeat(64))).is_none());
    }
    #[test]
    fn hashing_reader_matches_of_bytes() {
        let data = b"hello world".repeat(1000);
        let mut r = HashingReader::new(&data[..]);
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        let (d, n) = r.finish().unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(d, Digest::of_bytes(&data));
    }
}
