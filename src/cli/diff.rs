//! `imgslim diff A B`: the comparison is the requested output, so it goes to stdout (text or
//! `--json`); `--html FILE` also writes the report page in diff mode, through the outputs
//! transaction like slim's page.
use super::common::{self, InputArgs};
use super::outputs::{Outputs, Slot};
use super::CmdResult;
use crate::error::Error;
use crate::report::{diff, html, Sizes};
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The first image (e.g. the original).
    #[arg(value_name = "A")]
    pub a: String,
    /// The second image (e.g. the slimmed one).
    #[arg(value_name = "B")]
    pub b: String,
    /// Platform to pick from multi-platform indexes.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Print one JSON object (schema 1) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML page: treemap of A and B coloured added/removed/changed,
    /// tables, path search. stdout is unchanged (text, or JSON with --json).
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<String>,
    /// Replace an existing --html file.
    #[arg(long, requires = "html")]
    pub force: bool,
}

/// One side of the comparison.
struct Side {
    list: diff::Listing,
    config: Value,
    sizes: Sizes,
}

pub fn run(a: &DiffArgs) -> CmdResult {
    let work = common::work_area()?;
    let mut outs = Outputs::new(a.force, work.path());
    for image in [&a.a, &a.b] {
        if let Some(p) = common::input_path(&input(a, image)) {
            outs.protect_input(&p);
        }
    }
    let html_out = super::html::add(&mut outs, a.html.as_deref())?;
    let load = |image: &str, sub: &str| {
        let dir = work.path().join(sub);
        std::fs::create_dir(&dir).map_err(|e| Error::Other(format!("{}: {e}", dir.display())))?;
        let l = common::load_input(&input(a, image), &dir)?;
        let list = diff::listing(&l.tree, &l.store)?;
        Ok::<_, Error>(Side { list, sizes: l.sizes(), config: l.image.config })
    };
    let sa = load(&a.a, "a").map_err(|e| outs.user_error(e))?;
    let sb = load(&a.b, "b").map_err(|e| outs.user_error(e))?;
    let d = diff::compare(&sa.list, &sb.list, &sa.config, &sb.config);
    if let Some(slot) = html_out {
        write_html(a, &sa, &sb, &d, &mut outs, slot).map_err(|e| outs.user_error(e))?;
    }
    if a.json {
        let doc = diff::to_json(&d, &a.a, &a.b);
        println!("{}", serde_json::to_string_pretty(&doc).map_err(|e| Error::Other(e.to_string()))?);
    } else {
        print!("{}", diff::to_text(&d, &a.a, &a.b));
    }
    Ok(())
}

fn input(a: &DiffArgs, image: &str) -> InputArgs {
    InputArgs { image: image.to_string(), platform: a.platform.clone(), insecure_registry: Vec::new() }
}

fn write_html(a: &DiffArgs, sa: &Side, sb: &Side, d: &diff::Diff, outs: &mut Outputs, slot: Slot) -> CmdResult {
    let title = format!("diff {} {}", a.a, a.b);
    let page = html::Report {
        input: &title,
        mode: html::Mode::Diff(d),
        entries: &[],
        notes: &[],
        layers: Vec::new(),
        config_before: &sa.config,
        config_after: Some(&sb.config),
        before: sa.sizes,
        after: Some(sb.sizes),
        packages: None,
    };
    super::html::write(outs, slot, &page)?;
    outs.commit()
}
