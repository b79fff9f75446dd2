//! Fuzz harnesses: one entry point per parser of untrusted bytes. The cargo-fuzz targets in
//! `fuzz/` are one-line calls to these, and `tests/fuzz_regressions.rs` replays every saved
//! crash and corpus input through the same functions, so a finding stays fixed under plain
//! `cargo test`. Each harness must never panic on any input; a panic is a finding.
//!
//! Inputs holding several documents (layers, OCI blobs, ELF files) are split on [`SEP`].
use crate::digest::Digest;
use crate::fs::{ContentStore, Data, Meta, SpoolWriter, Tree};
use crate::image::{ImageName, OpenOptions, Platform};
use std::io::Write;

/// Separates the documents of one fuzz input. Seeds are built with it (fuzz/seed.sh).
pub const SEP: &[u8] = b"\n--8<--imgslim--8<--\n";

/// Split an input into at most `n` documents; missing ones are empty.
pub fn split(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    while out.len() + 1 < n {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out.resize(n, &[]);
    out
}

/// Join documents into one input (the inverse of [`split`]), for seed generation.
pub fn join(docs: &[&[u8]]) -> Vec<u8> {
    docs.join(SEP)
}

/// A spool file; None when the machine's $TMPDIR is unusable (full), which is not a finding.
fn spool(idx: u32) -> Option<SpoolWriter> {
    Some(SpoolWriter::new(idx, tempfile::tempfile().ok()?))
}

/// Layer reader and merge: up to 3 layer tars are read (tar, PAX, GNU long names, whiteouts)
/// and squashed. A merged tree is then written as one layer, read back, and must come back
/// as the same tree (paths, kinds, metadata).
pub fn layer(data: &[u8]) {
    let mut changesets = Vec::new();
    let mut store = ContentStore::new(0);
    for (i, doc) in split(data, 3).into_iter().enumerate() {
        if doc.is_empty() && i > 0 {
            continue;
        }
        let Some(mut sp) = spool(changesets.len() as u32) else { return };
        let Ok(cs) = crate::layer::read_changeset(doc, &mut sp, "fuzz layer") else { return };
        let Ok(file) = sp.finish() else { return };
        store.set(changesets.len() as u32, file);
        changesets.push(cs);
    }
    let names: Vec<String> = (0..changesets.len()).map(|i| format!("layer {i}")).collect();
    let Ok((tree, _)) = crate::layer::squash(&changesets, &names) else { return };
    let (tar, _) = crate::layer::write_tree(&tree, &store, Vec::new(), &Default::default()).expect("writing a merged tree");
    let Some(mut sp) = spool(0) else { return };
    let again = crate::layer::read_changeset(&tar[..], &mut sp, "rewritten layer").expect("re-reading our own layer");
    let (tree2, _) = crate::layer::squash(&[again], &["rewritten".into()]).expect("squashing our own layer");
    assert_eq!(shape(&tree), shape(&tree2), "a written layer reads back as a different tree");
}

/// What a tree looks like, content references aside.
fn shape(tree: &Tree) -> Vec<(Vec<u8>, &'static str, Meta, u64)> {
    tree.walk()
        .into_iter()
        .map(|(p, id)| (p, tree.kind(id).name(), tree.meta(id).clone(), tree.size(id)))
        .collect()
}

/// OCI index → manifest → config (and docker-archive `manifest.json`): the documents of the
/// input become an archive whose blobs are named by their real digests, so the fuzzer reaches
/// the parsers behind digest verification. Tokens in the documents are replaced by the digest
/// and size of the document they name: `@MANIFEST@`/`@MANIFEST_SIZE@`, `@CONFIG@`/
/// `@CONFIG_SIZE@`, `@LAYER@`/`@LAYER_SIZE@` (the layer is an uncompressed tar, so its
/// digest is also its diff_id), and `@CONFIG_HEX@`/`@LAYER_HEX@` for docker-archive names. Documents: index.json, manifest, config, manifest.json, layer.
pub fn image(data: &[u8]) {
    let [index, manifest, config, docker, layer]: [&[u8]; 5] = split(data, 5).try_into().expect("5 documents");
    let sub = |doc: &[u8], token: &str, of: &[u8]| {
        let d = Digest::of_bytes(of);
        let doc = replace(doc, &format!("@{token}_SIZE@"), of.len().to_string().as_bytes());
        replace(&replace(&doc, &format!("@{token}_HEX@"), d.hex().as_bytes()), &format!("@{token}@"), d.as_str().as_bytes())
    };
    let config = sub(config, "LAYER", layer);
    let manifest = sub(&sub(manifest, "CONFIG", &config), "LAYER", layer);
    let index = sub(index, "MANIFEST", &manifest);
    let docker = sub(&sub(docker, "CONFIG", &config), "LAYER", layer);
    let mut members: Vec<(String, &[u8])> = vec![("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#)];
    if !index.is_empty() {
        members.push(("index.json".into(), &index));
    }
    if !docker.is_empty() {
        members.push(("manifest.json".into(), &docker));
        members.push((format!("{}.json", Digest::of_bytes(&config).hex()), &config));
        members.push((format!("{}/layer.tar", Digest::of_bytes(layer).hex()), layer));
    }
    for doc in [&manifest[..], &config, layer] {
        members.push((Digest::of_bytes(doc).blob_path(), doc));
    }
    let Ok(archive) = archive_file(&members) else { return };
    let Ok(work) = tempfile::tempdir() else { return };
    for transport in ["oci-archive", "docker-archive"] {
        let Ok(name) = ImageName::parse(&format!("{transport}:{}", archive.path().display())) else { continue };
        let opts = OpenOptions { reference: None, platform: Platform::parse("linux/amd64").expect("a platform"), platform_explicit: false };
        if let Ok(img) = crate::image::open(&name, &opts, work.path()) {
            let _ = crate::image::unpack(&img, work.path());
        }
    }
}

fn replace(hay: &[u8], token: &str, with: &[u8]) -> Vec<u8> {
    let t = token.as_bytes();
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(t) {
            out.extend_from_slice(with);
            i += t.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fn archive_file(members: &[(String, &[u8])]) -> std::io::Result<tempfile::NamedTempFile> {
    let mut f = tempfile::NamedTempFile::new()?;
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *bytes)?;
    }
    f.write_all(&b.into_inner()?)?;
    Ok(f)
}

/// Where the ELF target puts its documents: the program, the loader's configuration and the
/// libraries the loader may find (a symlink makes the search cross a link).
const ELF_PATHS: [&str; 5] =
    ["/usr/bin/app", "/etc/ld.so.conf", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2", "/opt/lib/libfuzz.so"];

/// The SBOM's Java archive reader (zip, MANIFEST.MF, pom.properties, nested archives) on one
/// arbitrary archive.
pub fn jar(data: &[u8]) {
    let _ = crate::sbom::jar_packages("/srv/app.war", data.to_vec());
}

/// The ELF parser and the loader's search (DT_NEEDED, RPATH/RUNPATH, $ORIGIN, ld.so.conf,
/// hwcaps) on arbitrary files placed in a small image tree.
pub fn elf(data: &[u8]) {
    let docs = split(data, ELF_PATHS.len());
    let _ = crate::elf::parse(docs[0]);
    let mut tree = Tree::new();
    let mut store = ContentStore::new(0);
    let mut released = Vec::new();
    let file = Meta { mode: 0o755, ..Meta::default() };
    for (path, doc) in ELF_PATHS.iter().zip(&docs) {
        let Ok(content) = store.add_bytes(doc) else { return };
        let ino = tree.new_inode(file.clone(), Data::File { content });
        tree.put_leaf(&crate::fs::split_path(path.trim_start_matches('/').as_bytes()), ino, &mut released);
    }
    let link = tree.new_inode(file, Data::Symlink { target: b"../../../lib/x86_64-linux-gnu".to_vec() });
    tree.put_leaf(&[b"usr", b"lib", b"x86_64-linux-gnu"], link, &mut released);
    let fs = crate::plan::TreeFs { tree: &tree, store: &store };
    let opts = crate::elf::ClosureOptions { ld_library_path: Some("$ORIGIN/../lib:/opt/lib".into()), ld_preload: None, cwd: "/".into() };
    let _ = crate::elf::closure(&fs, &["/usr/bin/app".to_string()], &opts);
}

/// Profile TOML: parsing and validation (globs, names, providers).
pub fn profile(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::profile::schema::ProfileFile::parse(text, "fuzz.toml");
    }
}

/// The shell-script scanner's public entry point (a thin call, so its rewrite keeps the target).
pub fn script(data: &[u8]) {
    let _ = crate::plan::roots::command_words(&String::from_utf8_lossy(data));
}

/// `pack --unpack` on arbitrary input: the footer, the layout and the decompression.
pub fn pack_unpack(data: &[u8]) {
    let _ = crate::pack::layout(data);
    let _ = crate::pack::unpack(data);
}
