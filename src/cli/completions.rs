//! `imgslim completions SHELL` and `imgslim man`: generated from the same clap definitions the
//! parser uses, so they never drift from the real flags.
use super::CmdResult;
use crate::error::Error;
use clap::CommandFactory;
use std::io::Write;

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// Shell to generate completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub fn completions(a: &CompletionsArgs) -> CmdResult {
    let mut cmd = super::Cli::command();
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "imgslim", &mut out);
    write_stdout(&out)
}

/// One roff page for the whole tool: the top-level page plus a section per subcommand, so
/// `man imgslim` shows every flag.
pub fn man() -> CmdResult {
    let cmd = super::Cli::command();
    let mut out = Vec::new();
    let io = |e: std::io::Error| Error::Other(format!("man page: {e}"));
    let page = clap_mangen::Man::new(cmd.clone());
    page.render_title(&mut out).map_err(io)?;
    page.render_name_section(&mut out).map_err(io)?;
    page.render_synopsis_section(&mut out).map_err(io)?;
    page.render_description_section(&mut out).map_err(io)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        render_subcommand(&mut out, sub).map_err(io)?;
    }
    page.render_version_section(&mut out).map_err(io)?;
    write_stdout(&out)
}

/// A subcommand as its own section: heading, synopsis line, then its options.
fn render_subcommand(out: &mut Vec<u8>, sub: &clap::Command) -> std::io::Result<()> {
    let name = format!("imgslim {}", sub.get_name());
    let sub = sub.clone().bin_name(name.clone());
    writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
    let page = clap_mangen::Man::new(sub);
    // render_synopsis/options emit their own .SH headings; demote them to subsections.
    let mut part = Vec::new();
    page.render_synopsis_section(&mut part)?;
    page.render_description_section(&mut part)?;
    page.render_options_section(&mut part)?;
    let text = String::from_utf8_lossy(&part).replace(".SH ", ".SS ");
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> CmdResult {
    let mut so = std::io::stdout().lock();
    so.write_all(bytes).and_then(|_| so.flush()).map_err(|e| Error::Other(format!("stdout: {e}")))
}
