//! `imgslim diff A B`: the comparison is the requested output, so it goes to stdout.
use super::common::{self, InputArgs};
use super::CmdResult;
use crate::error::Error;
use crate::report::diff;

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
}

pub fn run(a: &DiffArgs) -> CmdResult {
    let work = common::work_area()?;
    let load = |image: &str, sub: &str| {
        let dir = work.path().join(sub);
        std::fs::create_dir(&dir).map_err(|e| Error::Other(format!("{}: {e}", dir.display())))?;
        let l = common::load_input(&InputArgs { image: image.to_string(), platform: a.platform.clone(), insecure_registry: Vec::new() }, &dir)?;
        let list = diff::listing(&l.tree, &l.store)?;
        Ok::<_, Error>((list, l.image.config))
    };
    let (la, ca) = load(&a.a, "a")?;
    let (lb, cb) = load(&a.b, "b")?;
    let d = diff::compare(&la, &lb, &ca, &cb);
    if a.json {
        let doc = diff::to_json(&d, &a.a, &a.b);
        println!("{}", serde_json::to_string_pretty(&doc).map_err(|e| Error::Other(e.to_string()))?);
    } else {
        print!("{}", diff::to_text(&d, &a.a, &a.b));
    }
    Ok(())
}
