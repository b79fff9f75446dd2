//! Unpack every layer in parallel: stream the blob once, hashing the compressed bytes (blob
//! digest) and the decompressed bytes (diff_id) while the tar is parsed into a changeset and
//! file contents are spooled to the work area.
use super::compress::Decoder;
use super::read::Image;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::fs::{ContentStore, SpoolError, SpoolWriter};
use crate::layer::{read_changeset, Changeset};
use rayon::prelude::*;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct LayerStat {
    pub digest: Option<Digest>,
    pub diff_id: Digest,
    pub compressed: u64,
    pub uncompressed: u64,
    pub files: usize,
    pub whiteouts: usize,
}

pub struct Unpacked {
    pub changesets: Vec<Changeset>,
    pub stats: Vec<LayerStat>,
    pub store: ContentStore,
}

pub fn unpack(img: &Image, work: &Path) -> Result<Unpacked> {
    let results: Vec<Result<(Changeset, LayerStat, std::fs::File)>> =
        img.layers.par_iter().enumerate().map(|(i, l)| unpack_one(img, i, l, work)).collect();
    if let Some(need) = work_area_need(&results) {
        return Err(Error::Full { path: work.to_path_buf(), need });
    }
    let mut changesets = Vec::new();
    let mut stats = Vec::new();
    let mut store = ContentStore::new(img.layers.len());
    for (i, r) in results.into_iter().enumerate() {
        let (cs, st, spool) = r?;
        store.set(i as u32, spool);
        changesets.push(cs);
        stats.push(st);
    }
    Ok(Unpacked { changesets, stats, store })
}

/// When a layer found the work area full: what all the layers' contents needed there
/// (the full ones counted what they could not write; the others wrote theirs).
fn work_area_need(results: &[Result<(Changeset, LayerStat, std::fs::File)>]) -> Option<u64> {
    if !results.iter().any(|r| matches!(r, Err(Error::Full { .. }))) {
        return None;
    }
    let size = |r: &Result<(Changeset, LayerStat, std::fs::File)>| match r {
        Ok((_, _, f)) => f.metadata().map(|m| m.len()).unwrap_or(0),
        Err(Error::Full { need, .. }) => *need,
        Err(_) => 0,
    };
    Some(results.iter().map(size).sum())
}

fn unpack_one(img: &Image, idx: usize, l: &super::read::LayerBlob, work: &Path) -> Result<(Changeset, LayerStat, std::fs::File)> {
    let what = l.describe();
    if !img.store.exists(&l.name) {
        return Err(Error::input(&what, format!("blob missing ({})", img.store.describe(&l.name))));
    }
    let (reader, stored_size) = img.store.open(&l.name)?;
    if let Some(want) = l.size {
        if want != stored_size {
            return Err(Error::input(
                &what,
                format!("size mismatch: descriptor says {want} bytes, blob has {stored_size} (truncated?)"),
            ));
        }
    }
    let spool_file = tempfile::tempfile_in(work).at(work)?;
    let mut spool = SpoolWriter::new(idx as u32, spool_file);
    let dec = Decoder::sniff(crate::progress::Counted(reader)).map_err(|e| Error::input(&what, format!("reading: {e}")))?;
    let mut tar_stream = crate::digest::HashingReader::new(dec);
    let parsed = read_changeset(&mut tar_stream, &mut spool, &what);
    // Hash to the end of both streams even when parsing failed: a corrupt blob must be
    // reported as a digest mismatch, which names the real problem, not as a tar error.
    let drained = tar_stream.drain();
    let (diff_id, uncompressed, dec) = tar_stream.into_parts();
    let mut raw = dec.into_hashed().into_inner();
    raw.drain().map_err(|e| Error::input(&what, format!("reading: {e}")))?;
    let (blob_digest, compressed, _) = raw.into_parts();
    if let Some(want) = &l.digest {
        if *want != blob_digest {
            return Err(Error::input(&what, format!("digest mismatch: content hashes to {blob_digest}")));
        }
    }
    if let Err(e) = drained {
        return Err(Error::input(&what, format!("decompression failed: {e}")));
    }
    let cs = parsed?;
    if diff_id != l.diff_id {
        return Err(Error::input(
            &what,
            format!("diff_id mismatch: uncompressed content hashes to {diff_id}, config says {}", l.diff_id),
        ));
    }
    let spool_file = spool.finish().map_err(|e| match e {
        SpoolError::Full(need) => Error::Full { path: work.to_path_buf(), need },
        SpoolError::Io(e) => Error::Other(format!("writing spool for {what}: {e}")),
    })?;
    let stat = LayerStat {
        digest: l.digest.clone(),
        diff_id,
        compressed,
        uncompressed,
        files: cs.file_count(),
        whiteouts: cs.whiteouts.len() + cs.opaque_dirs.len(),
    };
    Ok((cs, stat, spool_file))
}

