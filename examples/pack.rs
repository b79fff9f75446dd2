//! Stand-alone front end for `imgslim::pack` until the `imgslim pack`
//! subcommand is wired: `cargo run --release --example pack -- FILE -o OUT`.
//! Used by benches/pack.sh.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: imgslim::pack::cli::PackArgs,
}

fn main() -> anyhow::Result<()> {
    imgslim::pack::cli::run(&Cli::parse().args)
}
