//! Command-line interface. Exit codes: 0 success, 1 a problem with the input or output
//! (one line naming the file, blob or entry), 2 a usage error.
mod cache;
mod common;
mod inspect;
mod multiarch;
mod remote;
mod slim;
mod squash;

use crate::error::Error;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "imgslim", version, about = "Make container images small, and say why every file stayed or went")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show layers, config and wasted bytes of an image.
    Inspect(inspect::InspectArgs),
    /// Merge all layers into one and write the image back.
    Squash(squash::SquashArgs),
    /// Make a minimal image: keep what the app needs, drop the rest, say why.
    Slim(Box<slim::SlimArgs>),
    /// Pack one executable UPX-style (a small stub decompresses and runs it), or --unpack it.
    Pack(crate::pack::cli::PackArgs),
    /// The registry blob cache ($IMGSLIM_CACHE_DIR, else $XDG_CACHE_HOME/imgslim).
    Cache(cache::CacheArgs),
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let result = match &cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Squash(a) => squash::run(a),
        Command::Slim(a) => slim::run(a),
        Command::Cache(a) => cache::run(a),
        Command::Pack(a) => crate::pack::cli::run(a).map_err(|e| Error::Other(format!("{e:#}"))),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("imgslim: error: {e}");
            e.exit_code()
        }
    }
}

pub(crate) type CmdResult = Result<(), Error>;
