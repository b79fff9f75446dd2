//! `imgslim pack FILE -o OUT` / `imgslim pack --unpack FILE -o OUT`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::{assess, pack, unpack, Decision, Method, PackOptions};
use crate::cli::outputs::{Kind, Outputs};
use crate::error::{Error, IoContext, Result};

/// Pack one executable (or restore it with --unpack).
#[derive(Debug, Clone, clap::Args)]
pub struct PackArgs {
    /// Executable to pack (or packed file to restore with --unpack).
    pub file: PathBuf,
    /// Output path (written atomically; mode bits copied from FILE), or `-` for stdout.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: String,
    /// Replace an existing file at OUT.
    #[arg(long)]
    pub force: bool,
    /// Restore the original executable, byte for byte.
    #[arg(long)]
    pub unpack: bool,
    /// Compression preset, 0 (fast) to 9 (smallest); 6 is as small as 9 on typical binaries
    /// and needs less memory.
    #[arg(long = "pack-level", alias = "level", default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub level: u32,
    /// Slower "extreme" LZMA search: usually 1-2% smaller.
    #[arg(long)]
    pub extreme: bool,
    /// Compression method: auto (lzma up to 1 MiB of code and data, where its
    /// decoding takes ~25 ms or less; zstd above), lzma (smallest, slow to start
    /// for big programs) or zstd (6-10x faster to decode, ~15% larger).
    #[arg(long = "pack-method", alias = "method", value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,
    /// Pack even if smaller than the size threshold or the gain is under 20% (was `-f`).
    #[arg(long)]
    pub any_size: bool,
    /// Write the packed file even when it is not smaller than the input.
    #[arg(long)]
    pub allow_larger: bool,
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

pub fn run(args: &PackArgs) -> Result<()> {
    let work = crate::cli::work_area()?;
    let mut outs = Outputs::new(args.force, work.path());
    pack_to(args, &mut outs).map_err(|e| outs.user_error(e))
}

fn pack_to(args: &PackArgs, outs: &mut Outputs) -> Result<()> {
    outs.protect_input(&args.file);
    let slot = outs.add("-o", &args.output, Kind::File)?;
    let data = fs::read(&args.file).at(&args.file)?;
    let mode = fs::metadata(&args.file).at(&args.file)?.permissions().mode();
    let what = args.file.display().to_string();
    let out = if args.unpack {
        let orig = unpack(&data).map_err(|e| Error::input(&what, format!("unpacking: {e:#}")))?;
        crate::cli::ui::info(&format!("{what}: unpacked {} -> {} bytes", data.len(), orig.len()));
        orig
    } else {
        let (packed, msg) = crate::cli::ui::step("pack", || pack_one(args, &data, mode))?;
        if packed.len() >= data.len() && !args.allow_larger {
            return Err(Error::input(
                &what,
                format!("not packed: the result ({} bytes) is not smaller than the input ({} bytes); pass --allow-larger to write it anyway", packed.len(), data.len()),
            ));
        }
        crate::cli::ui::info(&msg);
        packed
    };
    let p = outs.path(slot);
    fs::write(&p, &out).at(&p)?;
    fs::set_permissions(&p, fs::Permissions::from_mode(mode & 0o7777)).at(&p)?;
    crate::cli::ui::step("put the output in place", || outs.commit())
}

/// The packed bytes and the line that describes them.
fn pack_one(args: &PackArgs, data: &[u8], mode: u32) -> Result<(Vec<u8>, String)> {
    let what = args.file.display().to_string();
    let opts = PackOptions { level: args.level, extreme: args.extreme, method: args.method.into(), ..PackOptions::default() };
    if args.any_size {
        // Size and gain policy off; the safety refusals still apply.
        if mode & 0o6000 != 0 {
            return Err(Error::input(&what, format!("not packed: {}", super::SkipReason::SetId)));
        }
        let packed = pack(data, &opts).map_err(|e| Error::input(&what, format!("packing: {e:#}")))?;
        let m = super::layout(&packed).map_or(Method::Auto, |l| l.method);
        let msg = format!("{what}: packed {} -> {} bytes ({m})", data.len(), packed.len());
        return Ok((packed, msg));
    }
    // A single explicit file: the caller vouches for file caps.
    match assess(data, mode, false, &opts) {
        Decision::Pack(p) => {
            let msg = format!("{what}: {}", Decision::Pack(p.clone()));
            Ok((p.bytes, msg))
        }
        Decision::Skip(r) => Err(Error::input(&what, format!("not packed: {r} (--any-size packs it anyway)"))),
    }
}
