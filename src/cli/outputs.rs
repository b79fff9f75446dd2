//! The output transaction. Every output the user names (-o, --report, and later --html,
//! --sbom) is added here before any work: its path is checked (never the input, never a file
//! or a foreign directory without --force), and a staging directory is made beside it (same
//! filesystem, so putting it in place is a rename). Commands write into the staging paths;
//! `commit` puts every output in place at the end, undoing the ones already placed if a later
//! one fails. Dropping an uncommitted transaction, an error, or a signal leaves none of them.
//!
//! A new output (`--html`, `--sbom`): `let s = outs.add("--html", path, Kind::File)?` next to
//! the others, before the image is unpacked; write the file at `outs.path(s)`; the command's
//! `outs.commit()` places it with the rest, and `outs.user_error` names it in errors.
use super::interrupt;
use crate::error::{Error, IoContext, Result};
use crate::fs::space::is_full;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What an output is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A file (an archive, a report, an executable); `-` streams it to stdout.
    File,
    /// An OCI layout directory; an existing one gets the new image added under its tag.
    Layout,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Create,
    Replace,
    AddToLayout,
}

struct Item {
    /// The flag and the path as the user wrote them, for messages.
    flag: String,
    given: String,
    kind: Kind,
    /// None: stdout.
    dest: Option<PathBuf>,
    mode: Mode,
    stage: PathBuf,
}

/// A handle on one output of an [`Outputs`].
#[derive(Clone, Copy, Debug)]
pub struct Slot(usize);

pub struct Outputs {
    force: bool,
    inputs: Vec<PathBuf>,
    items: Vec<Item>,
    work: PathBuf,
}

impl Outputs {
    /// `work` is the work area: a stdout output is staged there.
    pub fn new(force: bool, work: &Path) -> Outputs {
        Outputs { force, inputs: Vec::new(), items: Vec::new(), work: work.to_path_buf() }
    }

    /// A path the run reads: no output may be it, contain it or be inside it.
    pub fn protect_input(&mut self, p: &Path) {
        if let Ok(c) = std::fs::canonicalize(p) {
            self.inputs.push(c);
        }
    }

    /// Check an output path and prepare its staging area. `flag` is how the user named it.
    pub fn add(&mut self, flag: &str, given: &str, kind: Kind) -> Result<Slot> {
        let (dest, mode, parent) = if given == "-" {
            if kind == Kind::Layout {
                return Err(Error::Usage(format!("{flag} -: an OCI layout directory cannot go to stdout; use --format oci-archive or docker-archive")));
            }
            if self.items.iter().any(|i| i.dest.is_none()) {
                return Err(Error::Usage(format!("{flag} -: only one output can go to stdout")));
            }
            (None, Mode::Create, self.work.clone())
        } else {
            let (dest, mode) = self.check_path(flag, given, kind)?;
            if self.items.iter().any(|i| i.dest.as_deref() == Some(dest.as_path())) {
                return Err(Error::Usage(format!("{flag} {given}: the same path is given for two outputs")));
            }
            let parent = dest.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
            (Some(dest), mode, parent)
        };
        let stage = interrupt::create(
            || tempfile::Builder::new().prefix(".imgslim-tmp-").tempdir_in(&parent).map(|t| t.keep()),
            |p| p.clone(),
        )
        .map_err(|e| Error::input(given, format!("cannot write in {}: {}", parent.display(), plain(e))))?;
        self.items.push(Item { flag: flag.into(), given: given.into(), kind, dest, mode, stage });
        Ok(Slot(self.items.len() - 1))
    }

    /// Where the command writes this output (a file, or a directory it creates).
    pub fn path(&self, s: Slot) -> PathBuf {
        self.items[s.0].stage.join("out")
    }

    /// A directory on the output's filesystem for the command's own temporary files.
    pub fn scratch(&self, s: Slot) -> &Path {
        &self.items[s.0].stage
    }

    pub fn given(&self, s: Slot) -> &str {
        &self.items[s.0].given
    }

    pub fn is_stdout(&self, s: Slot) -> bool {
        self.items[s.0].dest.is_none()
    }

    /// Classify an existing path and decide what writing there means; refuse what would
    /// destroy data.
    fn check_path(&self, flag: &str, given: &str, kind: Kind) -> Result<(PathBuf, Mode)> {
        let refuse = |msg: String| Error::input(given, msg);
        let p = Path::new(given);
        let name = p.file_name().ok_or_else(|| refuse(format!("not a usable path for {flag}")))?;
        let parent = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let parent = std::fs::canonicalize(parent).map_err(|e| refuse(format!("its directory {} is not usable: {e}", parent.display())))?;
        if !parent.is_dir() {
            return Err(refuse(format!("{} is not a directory", parent.display())));
        }
        let dest = parent.join(name);
        let resolved = std::fs::canonicalize(&dest).unwrap_or_else(|_| dest.clone());
        for input in &self.inputs {
            let why = if &resolved == input || &dest == input {
                "is the input image"
            } else if resolved.starts_with(input) {
                "is inside the input image"
            } else if input.starts_with(&resolved) {
                "contains the input image"
            } else {
                continue;
            };
            return Err(refuse(format!("{why}; write the output elsewhere ({flag} must not overlap the input, even with --force)")));
        }
        let md = match std::fs::symlink_metadata(&dest) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((dest, Mode::Create)),
            Err(e) => return Err(refuse(e.to_string())),
            Ok(md) => md,
        };
        let force = |what: &str| {
            if self.force {
                Ok((dest.clone(), Mode::Replace))
            } else {
                Err(refuse(format!("{what}; pass --force to replace it")))
            }
        };
        if !md.is_dir() {
            return force("exists and is not a directory");
        }
        let empty = std::fs::read_dir(&dest).at(&dest)?.next().is_none();
        let layout = dest.join("oci-layout").is_file() && dest.join("index.json").is_file();
        match (kind, empty, layout) {
            (Kind::Layout, true, _) => Ok((dest, Mode::Replace)),
            (Kind::Layout, false, true) if self.force => Ok((dest, Mode::Replace)),
            (Kind::Layout, false, true) => Ok((dest, Mode::AddToLayout)),
            (Kind::File, _, true) => force("is an OCI layout directory, and this output is a file"),
            (Kind::File, _, false) => Err(refuse(format!("is a directory; {flag} names a file here"))),
            (Kind::Layout, false, false) => Err(refuse(
                "is a non-empty directory that is not an OCI layout; imgslim never replaces it (--force does not apply): choose a new path".into(),
            )),
        }
    }

    /// Put every output in place. If one fails, those already placed are undone.
    pub fn commit(&mut self) -> Result<()> {
        let items = &self.items;
        interrupt::critical(|_| {
            let mut done: Vec<Undo> = Vec::new();
            for item in items.iter().filter(|i| i.dest.is_some()) {
                match place(item) {
                    Ok(u) => done.push(u),
                    Err(e) => {
                        for u in done.into_iter().rev() {
                            u.undo();
                        }
                        return Err(e);
                    }
                }
            }
            Ok(())
        })?;
        // stdout last, outside the critical section: it cannot be undone, and a slow reader
        // must not hold off Ctrl-C.
        for item in items.iter().filter(|i| i.dest.is_none()) {
            stream_to_stdout(&item.stage.join("out"))?;
        }
        Ok(())
    }

    /// Rewrite an error about a staging path to name the user's path, and turn a full
    /// filesystem into one line saying which, how much the step needed and what was free.
    pub fn user_error(&self, e: Error) -> Error {
        let (path, full) = match &e {
            Error::Full { path, need } => (path, Some(Some(*need))),
            Error::Io { path, source } => (path, is_full(source).then_some(None)),
            _ => return e,
        };
        let tmp = self.work.parent().unwrap_or(&self.work);
        let work_area = || format!("the work area in {} ($TMPDIR)", tmp.display());
        if let Some(item) = self.items.iter().find(|i| path.starts_with(&i.stage)) {
            return match (full, &e) {
                (Some(need), _) => full_fs(&format!("{} {}", item.flag, item.given), &item.stage, &item.stage, "writing it", need),
                (None, Error::Io { source, .. }) => Error::input(&item.given, source.to_string()),
                (None, _) => e,
            };
        }
        if !path.starts_with(&self.work) {
            return e;
        }
        match (full, &e) {
            (Some(need), _) => full_fs(&work_area(), tmp, &self.work, "unpacking the input", need),
            (None, Error::Io { source, .. }) => Error::input(work_area(), source.to_string()),
            (None, _) => e,
        }
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        for item in &self.items {
            let _ = std::fs::remove_dir_all(&item.stage);
            interrupt::forget(&item.stage);
        }
    }
}

/// How to take back an output already placed when a later one fails.
enum Undo {
    Nothing,
    Remove(PathBuf),
    /// The old content was exchanged to `old`; exchange back.
    Exchange(PathBuf, PathBuf),
    /// The layout's index.json before the image was added.
    Index(PathBuf, Vec<u8>),
}

impl Undo {
    fn undo(self) {
        match self {
            Undo::Nothing => {}
            Undo::Remove(p) => {
                let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
            }
            Undo::Exchange(dest, old) => {
                let _ = exchange(&old, &dest);
            }
            Undo::Index(p, bytes) => {
                let _ = write_replace(&p, &bytes);
            }
        }
    }
}

fn place(item: &Item) -> Result<Undo> {
    let staged = item.stage.join("out");
    let Some(dest) = &item.dest else {
        return Ok(Undo::Nothing);
    };
    let name_err = |e: std::io::Error| Error::input(&item.given, e.to_string());
    match item.mode {
        Mode::AddToLayout => add_to_layout(&staged, dest).map_err(name_err),
        Mode::Replace => swap_in(item, &staged, dest),
        Mode::Create => create(item, &staged, dest),
    }
}

/// What may be swapped out of `p` and then deleted with the staging dir: a file (or link)
/// for a file output, an empty directory or an OCI layout for a layout output.
fn replaceable(kind: Kind, p: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => {
            kind == Kind::Layout && (p.join("oci-layout").is_file() || std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none()))
        }
        Ok(_) => kind == Kind::File,
        Err(_) => false,
    }
}

/// Exchange the staged output with what is at `dest`, checking before and after that what
/// goes out is something imgslim may replace: what is at OUT may have changed since the
/// check before the work (another program, another run). Never deletes anything else.
fn swap_in(item: &Item, staged: &Path, dest: &Path) -> Result<Undo> {
    let changed = || Error::input(&item.given, "changed while imgslim ran (it is no longer a file or an OCI layout imgslim may replace); left as it is");
    if !dest.exists() && std::fs::symlink_metadata(dest).is_err() {
        return create(item, staged, dest);
    }
    if !replaceable(item.kind, dest) {
        return Err(changed());
    }
    exchange(staged, dest).map_err(|e| Error::input(&item.given, e.to_string()))?;
    if !replaceable(item.kind, staged) {
        let _ = exchange(staged, dest);
        return Err(changed());
    }
    // The old content is now at `staged`, inside the staging dir that is dropped.
    Ok(Undo::Exchange(dest.to_path_buf(), staged.to_path_buf()))
}

/// Copy a staged output to stdout. A reader that goes away (`| head`) is an error here, not
/// a SIGPIPE death, so the work area is still removed.
fn stream_to_stdout(staged: &Path) -> Result<()> {
    // SAFETY: changing a signal disposition; no handler code runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut f = std::fs::File::open(staged).at(staged)?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut f, &mut out).and_then(|_| out.flush()).map_err(|e| Error::io("stdout", e))?;
    Ok(())
}

fn create(item: &Item, staged: &Path, dest: &Path) -> Result<Undo> {
    match rename_noreplace(staged, dest) {
        Ok(()) => Ok(Undo::Remove(dest.to_path_buf())),
        // Another run created it meanwhile: a layout gets our image added; a file is
        // replaced whole (both runs finish, OUT is one complete image).
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match item.kind {
            Kind::Layout if dest.join("oci-layout").is_file() => add_to_layout(staged, dest).map_err(|e| Error::input(&item.given, e.to_string())),
            _ => swap_in(item, staged, dest),
        },
        Err(e) => Err(Error::input(&item.given, e.to_string())),
    }
}

fn cpath(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<()> {
    let (f, t) = (cpath(from)?, cpath(to)?);
    // SAFETY: two valid NUL-terminated paths, relative to the current directory.
    let r = unsafe { libc::renameat2(libc::AT_FDCWD, f.as_ptr(), libc::AT_FDCWD, t.as_ptr(), flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Swap two paths atomically: readers see the old output or the new, never neither.
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    renameat2(a, b, libc::RENAME_EXCHANGE)
}

fn rename_noreplace(a: &Path, b: &Path) -> std::io::Result<()> {
    renameat2(a, b, libc::RENAME_NOREPLACE)
}

/// Write a file in place through a temp file in the same directory.
fn write_replace(p: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = p.parent().unwrap_or(Path::new("."));
    let mut t = tempfile::Builder::new().prefix(".imgslim-tmp-").tempfile_in(dir)?;
    t.write_all(bytes)?;
    t.as_file().sync_all()?;
    t.persist(p).map_err(|e| e.error)?;
    Ok(())
}

/// Add the staged layout's image to an existing layout, as `skopeo copy … oci:DIR:TAG` does:
/// blobs first (content-addressed, each renamed in), then index.json, where an entry with the
/// same ref name is replaced and every other entry stays. Under an flock on the layout, so
/// concurrent runs each add theirs.
fn add_to_layout(staged: &Path, dest: &Path) -> std::io::Result<Undo> {
    if !dest.join("oci-layout").is_file() || !dest.join("index.json").is_file() {
        return Err(std::io::Error::other("is no longer an OCI layout; left as it is"));
    }
    let dir = std::fs::File::open(dest)?;
    // SAFETY: a valid open file descriptor; the lock is released when `dir` closes.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&dir), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let blobs = dest.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    for e in std::fs::read_dir(staged.join("blobs/sha256"))? {
        let e = e?;
        let to = blobs.join(e.file_name());
        if !to.exists() {
            std::fs::rename(e.path(), &to)?;
        }
    }
    let index_path = dest.join("index.json");
    let old = std::fs::read(&index_path)?;
    let ours: serde_json::Value = serde_json::from_slice(&std::fs::read(staged.join("index.json"))?).map_err(std::io::Error::other)?;
    let mut index: serde_json::Value = serde_json::from_slice(&old).map_err(|e| std::io::Error::other(format!("index.json: {e}")))?;
    let new = ours["manifests"].as_array().cloned().unwrap_or_default();
    let ref_of = |m: &serde_json::Value| m.pointer("/annotations/org.opencontainers.image.ref.name").cloned();
    let new_refs: Vec<_> = new.iter().filter_map(ref_of).collect();
    let Some(list) = index.get_mut("manifests").and_then(|m| m.as_array_mut()) else {
        return Err(std::io::Error::other("index.json has no manifests list"));
    };
    list.retain(|m| ref_of(m).is_none_or(|r| !new_refs.contains(&r)));
    list.extend(new);
    write_replace(&index_path, &serde_json::to_vec(&index).map_err(std::io::Error::other)?)?;
    Ok(Undo::Index(index_path, old))
}

/// The OS error alone: tempfile's message would name the temp path.
pub fn plain(e: std::io::Error) -> std::io::Error {
    let os = e.raw_os_error().or_else(|| {
        let inner = std::error::Error::source(e.get_ref()?)?;
        inner.downcast_ref::<std::io::Error>()?.raw_os_error()
    });
    os.map(std::io::Error::from_raw_os_error).unwrap_or_else(|| std::io::Error::from(e.kind()))
}

/// "X: the filesystem mounted at M is full: STEP needed N (B bytes), F was free there".
/// F is what the run had to start with: free now plus what the run still holds in `own`.
/// A step that could not count its need says "needed more than the F free" instead.
pub fn full_fs(what: &str, dir: &Path, own: &Path, step: &str, need: Option<u64>) -> Error {
    let (mount, free) = fs_of(dir);
    let held: u64 = walkdir::WalkDir::new(own).into_iter().filter_map(|e| e.ok()).filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum();
    let free = super::common::human(free + held);
    let msg = match need {
        Some(n) => format!("the filesystem mounted at {mount} is full: {step} needed {} ({n} bytes), {free} was free there", super::common::human(n)),
        None => format!("the filesystem mounted at {mount} is full: {step} needed more than the {free} free there"),
    };
    Error::input(what, msg)
}

/// The mount point holding `p` and its free bytes.
fn fs_of(p: &Path) -> (String, u64) {
    let canon = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mount = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|m| m.replace("\\040", " "))
        .filter(|m| canon.starts_with(m))
        .max_by_key(|m| m.len())
        .unwrap_or_else(|| "/".into());
    let free = cpath(&canon)
        .ok()
        .and_then(|c| {
            let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
            // SAFETY: a valid path and a zeroed statvfs to fill.
            (unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
        })
        .unwrap_or(0);
    (mount, free)
}
