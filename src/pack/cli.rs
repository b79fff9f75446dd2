//! `imgslim pack FILE -o OUT` / `imgslim pack --unpack FILE -o OUT`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::{assess, pack, unpack, Decision, Method, PackOptions};

/// Pack one executable (or restore it with --unpack).
#[derive(Debug, Clone, clap::Args)]
pub struct PackArgs {
    /// Executable to pack (or packed file to restore with --unpack).
    pub file: PathBuf,
    /// Output path (written atomically; mode bits copied from FILE).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Restore the original executable, byte for byte.
    #[arg(long)]
    pub unpack: bool,
    /// Preset, 0 (fast) to 9 (smallest); 6 is as small as 9 on typical binaries and needs less memory.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub level: u32,
    /// Slower "extreme" LZMA search: usually 1-2% smaller.
    #[arg(long)]
    pub extreme: bool,
    /// Compression method: auto (lzma up to 1 MiB of code and data, where its
    /// decoding takes ~25 ms or less; zstd above), lzma (smallest, slow to start
    /// for big programs) or zstd (6-10x faster to decode, ~15% larger).
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,
    /// Pack even if smaller than the threshold or the gain is under 20%.
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    Auto,
    Lzma,
    Zstd,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Method {
        match m {
            MethodArg::Auto => Method::Auto,
            MethodArg::Lzma => Method::Lzma,
            MethodArg::Zstd => Method::Zstd,
        }
    }
}

pub fn run(args: &PackArgs) -> anyhow::Result<()> {
    let data = fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let meta = fs::metadata(&args.file)?;
    let mode = meta.permissions().mode();
    let out = if args.unpack {
        let orig = unpack(&data).with_context(|| format!("unpacking {}", args.file.display()))?;
        eprintln!("{}: unpacked {} -> {} bytes", args.file.display(), data.len(), orig.len());
        orig
    } else {
        let opts = PackOptions { level: args.level, extreme: args.extreme, method: args.method.into(), ..PackOptions::default() };
        if args.force {
            // Size and gain policy off; the safety refusals still apply.
            if mode & 0o6000 != 0 {
                bail!("{}: not packed: {}", args.file.display(), super::SkipReason::SetId);
            }
            let packed = pack(&data, &opts).with_context(|| format!("packing {}", args.file.display()))?;
            let m = super::layout(&packed).map_or(Method::Auto, |l| l.method);
            eprintln!("{}: packed {} -> {} bytes ({m})", args.file.display(), data.len(), packed.len());
            packed
        } else {
            // A single explicit file: the caller vouches for file caps.
            match assess(&data, mode, false, &opts) {
                Decision::Pack(p) => {
                    eprintln!("{}: {}", args.file.display(), Decision::Pack(p.clone()));
                    p.bytes
                }
                Decision::Skip(r) => bail!("{}: not packed: {r}", args.file.display()),
            }
        }
    };
    write_atomic(&args.output, &out, mode & 0o7777)
}

/// Writes to a temp file beside `path`, then renames, so readers never see a
/// half-written executable.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".imgslim-pack.")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    tmp.write_all(data)?;
    tmp.as_file().set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}
