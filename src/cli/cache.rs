//! `imgslim cache info|prune`: the registry blob cache.
use super::common::human;
use super::CmdResult;
use crate::error::Error;
use crate::registry::cache::{parse_size, Cache};

#[derive(clap::Args, Debug)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum CacheAction {
    /// Show where the cache is and how much it holds.
    Info,
    /// Delete least-recently-used blobs until at most --keep bytes remain (default: all).
    Prune {
        /// Bytes to keep, e.g. 2G or 500M.
        #[arg(long, value_name = "SIZE", default_value = "0")]
        keep: String,
    },
}

pub fn run(a: &CacheArgs) -> CmdResult {
    let cache = Cache::from_env()?;
    match &a.action {
        CacheAction::Info => {
            let u = cache.usage();
            println!("{}: {} blob(s), {} (bound {})", cache.dir.display(), u.blobs, human(u.bytes), human(cache.max_bytes));
        }
        CacheAction::Prune { keep } => {
            let keep = parse_size(keep).ok_or_else(|| Error::Usage(format!("--keep '{keep}': expected bytes, e.g. 2G")))?;
            let r = cache.prune(keep)?;
            let u = cache.usage();
            println!("pruned {} blob(s), {}; {} blob(s), {} left in {}", r.blobs, human(r.bytes), u.blobs, human(u.bytes), cache.dir.display());
        }
    }
    Ok(())
}
