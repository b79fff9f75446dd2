//! `imgslim trace IMAGE -o TRACE.json [probes] [-- ARGS]`: run the app in the sandbox under
//! the tracer, drive the probes, write every path it touched. Also what `slim --trace` runs.
use super::common::{self, Loaded};
use super::run::RunArgs;
use crate::error::{Error, Result};
use crate::sandbox::session::{self, RunOptions};
use crate::sandbox::{ProbeArgs, Sandbox};
use crate::trace::{self, BoxSink, Header, ProbeLabel, SandboxTracer, TraceFile, Writer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// The trace file to write (JSON).
    #[arg(short = 'o', long = "output", value_name = "TRACE.json")]
    pub output: PathBuf,
    /// The image, how it runs and the probes: as for `imgslim run`.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Hidden: trace a host command (benches and tests of the tracer; never image code).
#[derive(clap::Args, Debug)]
pub struct TraceHostArgs {
    #[arg(short = 'o', long = "output", value_name = "TRACE.json")]
    pub output: PathBuf,
    #[arg(last = true, required = true)]
    pub argv: Vec<String>,
}

pub fn run(a: &TraceArgs) -> Result<()> {
    session::catch_interrupts();
    let work = common::work_area()?;
    let _guardian = session::guard_work_area(work.path())?;
    let s = &a.run.sandbox;
    s.probes.probes()?;
    let loaded = common::load_input(&a.run.input, work.path())?;
    let opts = s.container.options(&s.args, false)?;
    let n = record(&loaded, &opts, &s.probes, work.path(), &a.output)?;
    eprintln!("imgslim: traced {n} events into {}", a.output.display());
    Ok(())
}

pub fn header(loaded: &Loaded) -> Header {
    Header { config_digest: loaded.image.config_digest.to_string(), imgslim_version: env!("CARGO_PKG_VERSION").into() }
}

/// Trace one sandboxed run of `loaded` into `out`; returns the number of events.
pub fn record(loaded: &Loaded, opts: &RunOptions, probes: &ProbeArgs, work: &Path, out: &Path) -> Result<u64> {
    let (_rootfs, spec) = session::prepare(&loaded.tree, &loaded.store, &loaded.image.config, work, "trace", opts)?;
    session::check_interrupted()?;
    let writer = Arc::new(Mutex::new(Some(Writer::create(out, &header(loaded))?)));
    let w2 = writer.clone();
    let sink: BoxSink = Box::new(move |e| match w2.lock().ok().and_then(|mut g| g.as_mut().map(|w| w.push(e))) {
        Some(r) => r,
        None => Err(std::io::Error::other("trace writer gone")),
    });
    let label: ProbeLabel = Arc::default();
    let (mut hooks, tracer) = SandboxTracer::start(label.clone(), sink);
    let mut running = Sandbox::start(&spec, &mut hooks)?;
    running.reaped_by_tracer();
    session::kill_on_interrupt(running.init_pid());
    let ctl = running.control();
    let outcome = session::exercise(&ctl, probes, &mut |p| {
        if let Ok(mut l) = label.lock() {
            *l = p.map(str::to_string);
        }
    });
    running.stop();
    let joined = trace::join_tracer(tracer, trace::DRAIN_TIMEOUT);
    if joined.is_ok() {
        running.mark_reaped();
    }
    session::kill_on_interrupt(0);
    session::check_interrupted()?;
    let (answers, _app) = outcome?;
    for x in &answers {
        eprintln!("probe {}: {}", x.label, x.summary());
    }
    if let Err(e) = joined {
        return Err(Error::Other(format!("tracer: {e}")));
    }
    let w = writer.lock().ok().and_then(|mut g| g.take()).ok_or_else(|| Error::Other("trace writer gone".into()))?;
    w.finish()
}

pub fn run_host(a: &TraceHostArgs) -> Result<i32> {
    let header = Header { config_digest: "host".into(), imgslim_version: env!("CARGO_PKG_VERSION").into() };
    let mut w = Writer::create(&a.output, &header)?;
    let code = trace::trace_command(&a.argv, ProbeLabel::default(), &mut |e| w.push(e)).map_err(|e| Error::Other(format!("tracing {}: {e}", a.argv[0])))?;
    w.finish()?;
    Ok(code.unwrap_or(1))
}

/// Read trace files and refuse any taken on another image.
pub fn load_traces(files: &[PathBuf], loaded: &Loaded) -> Result<Vec<TraceFile>> {
    let want = loaded.image.config_digest.to_string();
    files
        .iter()
        .map(|f| {
            let t = trace::record::read(f)?;
            if t.header.config_digest != want {
                return Err(Error::Usage(format!(
                    "{}: traced on another image (config {}), not this one ({want}): trace this image with `imgslim trace`",
                    f.display(),
                    t.header.config_digest
                )));
            }
            Ok(t)
        })
        .collect()
}

/// `slim --trace/--from-trace`: trace in place (when asked: `trace_now` says how the app runs),
/// read the traces, resolve them in the image. `None` when neither is given.
pub fn traced_needs(trace_now: Option<&RunOptions>, files: &[PathBuf], probes: &ProbeArgs, loaded: &Loaded, work: &Path) -> Result<Option<crate::plan::Needs>> {
    let mut files = files.to_vec();
    if let Some(opts) = trace_now {
        session::catch_interrupts();
        let out = work.join("slim-trace.json");
        let n = super::ui::step("trace the app", || record(loaded, opts, probes, work, &out))?;
        eprintln!("imgslim: traced {n} events");
        files.push(out);
    }
    if files.is_empty() {
        return Ok(None);
    }
    let traces = load_traces(&files, loaded)?;
    let fs = crate::plan::TreeFs { tree: &loaded.tree, store: &loaded.store };
    Ok(Some(trace::resolve::needs(&fs, &traces)))
}
