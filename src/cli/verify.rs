//! `imgslim verify ORIGINAL CANDIDATE [probes]`: run both images in the sandbox with the same
//! probes and compare every answer (HTTP status and body, exec exit code and stdout, the app's
//! exit code and output); a table, one row per probe; exit 3 (policy) on any difference.
use super::common::{self, InputArgs, Loaded};
use super::run::SandboxArgs;
use super::CmdResult;
use crate::error::{Error, Result};
use crate::sandbox::probe::Answer;
use crate::sandbox::session::{self, RunOptions};
use crate::sandbox::{NoHooks, ProbeArgs, Sandbox};
use std::path::Path;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The image as it was.
    pub original: String,
    /// The image to check (a slimmed one) against it.
    pub candidate: String,
    /// Platform to pick from a multi-platform index (both images).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// Print the comparison as one JSON object (schema 1) on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &VerifyArgs) -> CmdResult {
    session::catch_interrupts();
    let work = common::work_area()?;
    let _guardian = session::guard_work_area(work.path())?;
    let opts = a.sandbox.container.options(&a.sandbox.args, true)?;
    let input = |image: &str| InputArgs { image: image.to_string(), platform: a.platform.clone(), insecure_registry: Vec::new() };
    compare(&input(&a.original), &input(&a.candidate), &opts, &a.sandbox.probes, work.path(), a.json)
}

/// Run both, print the table (or `--json`), `Err(Policy)` naming the probes that differ and the
/// paths to `--keep` (see [`keep_hint`]).
pub fn compare(original: &InputArgs, candidate: &InputArgs, opts: &RunOptions, probes: &ProbeArgs, work: &Path, json: bool) -> CmdResult {
    probes.probes()?;
    let (orig, cand) = (load(original, work, "original")?, load(candidate, work, "candidate")?);
    let a = answers(&orig, original, opts, probes, work, "original")?;
    let b = answers(&cand, candidate, opts, probes, work, "candidate")?;
    let differ = if json { to_json(original, candidate, &a, &b)? } else { table(&a, &b) };
    if differ.is_empty() {
        if !json {
            println!("verify: the candidate answered every probe ({}) like the original", a.len());
        }
        return Ok(());
    }
    let hint = match keep_hint(&orig, &cand, opts, probes, &work.join("candidate")) {
        Ok(paths) if paths.is_empty() => String::new(),
        Ok(paths) => {
            let shown: Vec<&str> = paths.iter().take(HINT_MAX).map(String::as_str).collect();
            let more = paths.len().saturating_sub(HINT_MAX);
            let more = if more > 0 { format!(" (and {more} more)") } else { String::new() };
            format!("; the candidate failed to open {} path(s) the original has, keep them: --keep {}{more}", paths.len(), shown.join(" --keep "))
        }
        Err(e) => {
            eprintln!("imgslim: note: could not trace the candidate to name the paths to --keep: {e}");
            String::new()
        }
    };
    Err(Error::Policy(format!("verify: {} of {} probes answered differently: {}{hint}", differ.len(), a.len(), differ.join("; "))))
}

/// How many paths the one-line error names.
const HINT_MAX: usize = 12;

/// Run the candidate again under the tracer with the same probes: its failed lookups of paths
/// that exist in the original are what the slim dropped and the app looked for.
fn keep_hint(orig: &Loaded, cand: &Loaded, opts: &RunOptions, probes: &ProbeArgs, dir: &Path) -> Result<Vec<String>> {
    let out = dir.join("keep-hint.json");
    super::trace::record(cand, opts, probes, dir, &out)?;
    let t = crate::trace::record::read(&out)?;
    let (o, c) = (crate::plan::TreeFs { tree: &orig.tree, store: &orig.store }, crate::plan::TreeFs { tree: &cand.tree, store: &cand.store });
    Ok(crate::trace::resolve::missing(&t.events, &o, &c))
}

fn load(input: &InputArgs, work: &Path, name: &str) -> Result<Loaded> {
    let dir = work.join(name);
    std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    common::load_input(input, &dir)
}

/// The image's answers to the probes, then the app's end.
pub fn answers(loaded: &Loaded, input: &InputArgs, opts: &RunOptions, probes: &ProbeArgs, work: &Path, name: &str) -> Result<Vec<Answer>> {
    session::check_interrupted()?;
    let (_rootfs, spec) = session::prepare(&loaded.tree, &loaded.store, &loaded.image.config, &work.join(name), "sandbox", opts)
        .map_err(|e| Error::Other(format!("{name} {}: {e}", input.image)))?;
    let running = Sandbox::start(&spec, &mut NoHooks)?;
    session::kill_on_interrupt(running.init_pid());
    let outcome = session::exercise(&running.control(), probes, &mut |_| {});
    session::check_interrupted()?;
    let (mut answers, app) = outcome?;
    running.stop();
    running.wait()?;
    session::kill_on_interrupt(0);
    answers.push(Answer::app(app.as_ref()));
    Ok(answers)
}

/// `--json`: one document with a row per probe; returns the labels of those that differ.
fn to_json(original: &InputArgs, candidate: &InputArgs, a: &[Answer], b: &[Answer]) -> Result<Vec<String>> {
    let rows: Vec<serde_json::Value> = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let same = x.head == y.head && x.body == y.body;
            serde_json::json!({"probe": x.label, "same": same, "original": x.summary(), "candidate": y.summary()})
        })
        .collect();
    let differ: Vec<String> = rows.iter().filter(|r| r["same"] == false).filter_map(|r| r["probe"].as_str().map(str::to_string)).collect();
    common::print_json(&serde_json::json!({
        "schema": crate::report::SCHEMA,
        "command": "verify",
        "original": original.image,
        "candidate": candidate.image,
        "same": differ.is_empty(),
        "probes": rows,
    }))?;
    Ok(differ)
}

/// Print one row per probe; returns the labels of those that differ.
fn table(a: &[Answer], b: &[Answer]) -> Vec<String> {
    let w = a.iter().map(|x| x.label.len()).max().unwrap_or(5).clamp(5, 48);
    println!("{:<w$}  {:<6}  {:<44}  candidate", "probe", "result", "original");
    let mut differ = Vec::new();
    for (x, y) in a.iter().zip(b) {
        let same = x.head == y.head && x.body == y.body;
        if !same {
            differ.push(x.label.clone());
        }
        let (sa, sb) = (x.summary(), y.summary());
        let result = if same { "same" } else { "DIFFER" };
        println!("{:<w$}  {result:<6}  {:<44}  {}", x.label, sa, if same { "=".to_string() } else { sb });
        if !same && !y.stderr.is_empty() {
            println!("{:<w$}  candidate stderr: {}", "", String::from_utf8_lossy(&y.stderr).trim_end());
        }
    }
    differ
}
