//! Command-line interface. Exit codes: 0 success, 1 a problem with the input or output
//! (one line naming the file, blob or entry), 2 a usage error, 3 refused by policy,
//! 130/143 interrupted by SIGINT/SIGTERM.
mod ci;
mod cache;
mod common;
mod completions;
mod diff;
mod html;
mod inspect;
pub mod interrupt;
pub mod outputs;
pub mod run;
mod multiarch;
mod remote;
mod slim;
mod squash;
pub(crate) mod ui;
pub mod trace;
pub mod verify;
pub(crate) use common::work_area;

use crate::error::Error;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "imgslim",
    version,
    about = "Make container images small, and say why every file stayed or went",
    after_help = EXIT_CODES,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print each step with its time.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

const EXIT_CODES: &str = "Human output goes to stderr; stdout carries only machine output (an image with -o -, a report with --report -, inspect).

Exit codes:
  0        success
  1        a problem with the input or an output (one line naming the path)
  2        usage error
  3        refused by policy (--strict risks, a failed verify)
  130/143  interrupted by SIGINT/SIGTERM (nothing is left at the outputs)";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show layers, config and wasted bytes of an image.
    #[command(after_help = EXIT_CODES)]
    Inspect(inspect::InspectArgs),
    /// Merge all layers into one and write the image back.
    #[command(after_help = EXIT_CODES)]
    Squash(squash::SquashArgs),
    /// Make a minimal image: keep what the app needs, drop the rest, say why.
    #[command(after_help = EXIT_CODES)]
    Slim(Box<slim::SlimArgs>),
    /// Pack one executable UPX-style (a small stub decompresses and runs it), or --unpack it.
    #[command(after_help = EXIT_CODES)]
    Pack(crate::pack::cli::PackArgs),
    /// Run the image's app in a daemonless, rootless sandbox (like `docker run --rm`); exits
    /// with the app's code.
    #[command(after_help = EXIT_CODES)]
    Run(Box<run::RunArgs>),
    /// Run ORIGINAL and CANDIDATE with the same probes and compare every answer (exit 3 when
    /// any differs).
    #[command(after_help = EXIT_CODES)]
    Verify(Box<verify::VerifyArgs>),
    /// Run the image's app in the sandbox under the tracer, drive the probes, and write every
    /// path it touched (with syscall, result, pid, executable and probe) to a trace file.
    #[command(after_help = EXIT_CODES)]
    Trace(Box<trace::TraceArgs>),
    /// Trace a host command (tracer benchmarks and tests; never image code).
    #[command(hide = true)]
    TraceHost(trace::TraceHostArgs),
    /// Compare two images: paths added, removed and changed, config, size by directory.
    #[command(after_help = EXIT_CODES)]
    Diff(diff::DiffArgs),
    /// Print shell completions (bash, zsh or fish) on stdout.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff) on stdout.
    Man,
    /// The registry blob cache ($IMGSLIM_CACHE_DIR, else $XDG_CACHE_HOME/imgslim).
    #[command(after_help = EXIT_CODES)]
    Cache(cache::CacheArgs),
    /// Print the help of imgslim or of a subcommand.
    Help(HelpArgs),
}

#[derive(clap::Args, Debug)]
pub struct HelpArgs {
    /// The subcommand to describe [default: imgslim itself].
    pub command: Option<String>,
}

/// `imgslim help [COMMAND]`, a real subcommand so that `imgslim help --help` works too.
fn help(a: &HelpArgs) -> CmdResult {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.build();
    let target = match &a.command {
        None => &mut cmd,
        Some(name) => cmd.find_subcommand_mut(name).ok_or_else(|| Error::Usage(format!("help {name}: no such subcommand")))?,
    };
    target.print_long_help().map_err(|e| Error::io("stdout", e))
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
    ui::set(cli.quiet, cli.verbose);
    interrupt::install();
    let result = match &cli.command {
        Command::Run(a) => match run::run(a) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Inspect(a) => inspect::run(a),
        Command::Squash(a) => squash::run(a),
        Command::Slim(a) => slim::run(a),
        Command::Pack(a) => crate::pack::cli::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Help(a) => help(a),
        Command::Trace(a) => trace::run(a),
        Command::TraceHost(a) => match trace::run_host(a) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Diff(a) => diff::run(a),
        Command::Completions(a) => completions::completions(a),
        Command::Man => completions::man(),
        Command::Cache(a) => cache::run(a),
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
