//! Command-line interface. Exit codes: 0 success, 1 a problem with the input or output
//! (one line naming the file, blob or entry), 2 a usage error.
mod ci;
mod common;
mod completions;
mod diff;
mod inspect;
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
    /// Compare two images: paths added, removed and changed, config, size by directory.
    Diff(diff::DiffArgs),
    /// Print shell completions (bash, zsh or fish) on stdout.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff) on stdout.
    Man,
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
        Command::Pack(a) => crate::pack::cli::run(a).map_err(|e| Error::Other(format!("{e:#}"))),
        Command::Diff(a) => diff::run(a),
        Command::Completions(a) => completions::completions(a),
        Command::Man => completions::man(),
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
