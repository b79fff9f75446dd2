//! Command-line interface. Exit codes: 0 success, 1 a problem with the input or output
//! (one line naming the file, blob or entry), 2 a usage error.
mod common;
mod inspect;
pub mod run;
mod slim;
mod squash;
pub mod trace;
pub mod verify;

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
    /// Run the image's app in a daemonless, rootless sandbox (like `docker run --rm`); exits
    /// with the app's code.
    Run(Box<run::RunArgs>),
    /// Run ORIGINAL and CANDIDATE with the same probes and compare every answer (exit 3 when
    /// any differs).
    Verify(Box<verify::VerifyArgs>),
    /// Run the image's app in the sandbox under the tracer, drive the probes, and write every
    /// path it touched (with syscall, result, pid, executable and probe) to a trace file.
    Trace(Box<trace::TraceArgs>),
    /// Trace a host command (tracer benchmarks and tests; never image code).
    #[command(hide = true)]
    TraceHost(trace::TraceHostArgs),
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
        Command::Run(a) => match run::run(a) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Inspect(a) => inspect::run(a),
        Command::Squash(a) => squash::run(a),
        Command::Slim(a) => slim::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Trace(a) => trace::run(a),
        Command::TraceHost(a) => match trace::run_host(a) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
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
