//! Replays every input the fuzz campaign found a crash or hang with (fuzz/regressions/<target>/*,
//! committed) and, when present, the seed corpus (fuzz/corpus/<target>/*, made by fuzz/seed.py),
//! through the same harnesses the fuzz targets call. A failure names the input file.
use std::path::Path;

type Harness = fn(&[u8]);

const TARGETS: &[(&str, Harness)] = &[
    ("layer", imgslim::fuzz::layer),
    ("image", imgslim::fuzz::image),
    ("elf", imgslim::fuzz::elf),
    ("profile", imgslim::fuzz::profile),
    ("script", imgslim::fuzz::script),
    ("pack_unpack", imgslim::fuzz::pack_unpack),
    ("jar", imgslim::fuzz::jar),
];

/// Run every file of `dir/<target>/` through its harness; returns (inputs run, failures).
fn replay(dir: &str) -> (usize, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let (mut runs, mut failed) = (0, Vec::new());
    for (target, harness) in TARGETS {
        let Ok(rd) = std::fs::read_dir(root.join(target)) else { continue };
        let mut files: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
        files.sort();
        for f in files {
            // A corpus file can vanish while a fuzzer is running on the same corpus.
            let Ok(bytes) = std::fs::read(&f) else { continue };
            runs += 1;
            if std::panic::catch_unwind(|| harness(&bytes)).is_err() {
                failed.push(f.display().to_string());
            }
        }
    }
    (runs, failed)
}

#[test]
fn fuzz_regressions_stay_fixed() {
    let (runs, failed) = replay("fuzz/regressions");
    eprintln!("replayed {runs} regression inputs");
    assert!(failed.is_empty(), "harness panicked on: {failed:#?}");
}

#[test]
fn fuzz_corpus_replays_cleanly() {
    let (runs, failed) = replay("fuzz/corpus");
    eprintln!("replayed {runs} corpus inputs");
    assert!(failed.is_empty(), "harness panicked on: {failed:#?}");
}

/// The separator round trip the multi-document seeds rely on.
#[test]
fn split_inverts_join() {
    let docs: [&[u8]; 3] = [b"a", b"", b"c"];
    assert_eq!(imgslim::fuzz::split(&imgslim::fuzz::join(&docs), 3), docs);
    assert_eq!(imgslim::fuzz::split(b"only", 3), [&b"only"[..], b"", b""]);
}
