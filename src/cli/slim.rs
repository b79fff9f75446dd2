use super::common::{self, InputArgs, OutputArgs};
use super::outputs::{Kind, Outputs, Slot};
use super::{ui, CmdResult};
use crate::error::{Error, IoContext};
use crate::image::{self, config};
use crate::layer::WriteOptions;
use crate::plan::{self, distroless, Level, PlanOptions};
use crate::report::{self, Sizes};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct SlimArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// minimal: keep only what the app needs; clean: drop only what the drop rules name.
    #[arg(long, value_enum, default_value = "minimal")]
    pub level: Level,
    /// A builtin profile to force (python, node, …) or a profile TOML file.
    #[arg(long = "profile", value_name = "NAME|FILE")]
    pub profiles: Vec<String>,
    /// Keep paths matching this glob (and their ELF closure is not computed: list libraries too).
    #[arg(long = "keep", value_name = "GLOB")]
    pub keep: Vec<String>,
    /// Drop paths matching this glob, whatever needs them (except --keep).
    #[arg(long = "drop", value_name = "GLOB")]
    pub drop: Vec<String>,
    /// No shell or package manager unless needed; a nonroot user (65532) when the image runs as root.
    #[arg(long)]
    pub distroless: bool,
    /// What the dpkg database says afterwards: prune (default) deletes packages with no files
    /// left and names only the remaining files of the others; status.d writes distroless's
    /// /var/lib/dpkg/status.d/<pkg>; keep leaves it as it was; drop removes it.
    /// [default: prune; status.d at --level traced]
    #[arg(long, value_enum, value_name = "MODE")]
    pub package_db: Option<crate::pkgdb::Mode>,
    /// User the image runs as (name, uid or uid:gid) [default: the input's].
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Entrypoint as a JSON array, e.g. '["/app/server"]'.
    #[arg(long, value_name = "JSON")]
    pub entrypoint: Option<String>,
    /// Cmd as a JSON array.
    #[arg(long, value_name = "JSON")]
    pub cmd: Option<String>,
    /// Set an environment variable in the config (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Remove an environment variable from the config (repeatable).
    #[arg(long = "unset-env", value_name = "K")]
    pub unset_env: Vec<String>,
    /// Add a label to the config (repeatable).
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Write the full plan as JSON (every path with its decision and reason); `-` for stdout.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<String>,
    /// Write a self-contained HTML page: treemap kept/dropped, tables, path search.
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<String>,
    /// Write the slimmed image's SBOM (OS and language packages with the files they kept).
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<String>,
    /// The SBOM's format: SPDX 2.3 or CycloneDX 1.6, as JSON.
    #[arg(long, value_enum, default_value = "spdx-json", requires = "sbom")]
    pub sbom_format: crate::sbom::Format,
    /// Print why PATH is kept or dropped.
    #[arg(long, value_name = "PATH")]
    pub explain: Vec<String>,
    /// Print the plan without writing an image.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as one JSON object (schema 1) on stdout (the summary stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// Any risk (unresolved command, broken root, dropped app tree…) or secret left in the
    /// output is an error: exit 3, nothing written
    #[arg(long)]
    pub strict: bool,
    /// Redact secrets in history lines, remove secret Env entries, drop secret files (unless
    /// --keep names them). Without it, secrets found are warnings.
    #[arg(long)]
    pub scrub_secrets: bool,
    /// Refuse (exit 3, nothing written) when the slimmed image is larger than SIZE:
    /// uncompressed layer bytes, as `docker images` counts them (`50MB`, `20MiB`, bytes).
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Refuse (exit 3, nothing written) unless the image shrinks at least X times
    /// (uncompressed layer bytes before ÷ after; `--min-factor 4`).
    #[arg(long, value_name = "X")]
    pub min_factor: Option<f64>,
    /// Pack large executables UPX-style (each packed or skipped binary is listed with its reason).
    #[arg(long)]
    pub pack: bool,
    /// Packing method: auto (lzma up to 1 MiB of code and data, where its
    /// decoding takes ~25 ms or less; zstd above), lzma (smallest) or zstd
    /// (fastest start-up).
    #[arg(long, value_enum, default_value = "auto", requires = "pack")]
    pub pack_method: crate::pack::cli::MethodArg,
    /// Packing preset, 0 (fast) to 9 (smallest), as `pack --pack-level`.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9), requires = "pack")]
    pub pack_level: u32,
    /// After writing, run the original and the slimmed image in the sandbox with the same
    /// probes and compare every answer (`imgslim verify`); exit 3 naming the probes that differ.
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub probes: crate::sandbox::ProbeArgs,
    /// Run the app in the sandbox under the tracer with the probes first, and keep what it
    /// touched on top of the static plan.
    #[arg(long)]
    pub trace: bool,
    /// Keep what these traces (`imgslim trace`, same image) touched on top of the static plan.
    #[arg(long = "from-trace", value_name = "TRACE.json", num_args = 1..)]
    pub from_trace: Vec<PathBuf>,
    /// Replace Cmd in the --trace and --verify runs, as `imgslim run IMAGE -- ARGS` (the
    /// written image keeps its Cmd: --cmd changes that).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

fn kv(list: &[String], flag: &str) -> Result<Vec<(String, String)>, Error> {
    list.iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::Usage(format!("{flag} '{s}': expected KEY=VALUE"))),
        })
        .collect()
}

fn json_array(s: &str, flag: &str) -> Result<Value, Error> {
    let v: Value = serde_json::from_str(s).map_err(|e| Error::Usage(format!("{flag}: not JSON: {e}")))?;
    match &v {
        Value::Array(a) if a.iter().all(Value::is_string) => Ok(v),
        _ => Err(Error::Usage(format!("{flag}: expected a JSON array of strings, e.g. [\"/app/server\", \"--port\", \"8080\"]"))),
    }
}

pub fn run(a: &SlimArgs) -> CmdResult {
    if super::multiarch::wanted(&a.input) {
        return super::multiarch::run(a);
    }
    if a.output.output.is_none() && !a.dry_run && a.explain.is_empty() {
        return Err(Error::Usage("slim needs -o OUT (or --dry-run, or --explain PATH)".into()));
    }
    common::check_json_stdout(a.json, &[("-o", a.output.output.as_deref()), ("--report", a.report.as_deref())])?;
    if a.dry_run && a.report.as_deref().is_some_and(|r| r != "-") {
        return Err(Error::Usage("--dry-run writes nothing, not even --report FILE: use --report - to print the plan as JSON".into()));
    }
    if a.verify && (a.dry_run || a.output.output.as_deref() == Some("-")) {
        return Err(Error::Usage("--verify needs an image on disk to run: drop --dry-run / -o -".into()));
    }
    if a.sbom.is_some() && a.dry_run {
        return Err(Error::Usage("--sbom describes the image written: drop --dry-run".into()));
    }
    a.probes.probes()?;
    let gates = Gates::parse(a)?;
    let edits = Edits::parse(a)?;
    let work = common::work_area()?;
    // Forked before the run's threads: it removes the work area even if a verify run is killed.
    let _guardian = if a.verify || a.trace { Some(crate::sandbox::session::guard_work_area(work.path())?) } else { None };
    let mut outs = Outputs::new(a.output.force, work.path());
    slim(a, &edits, &gates, work.path(), &mut outs).map_err(|e| outs.user_error(e))
}

/// `--max-size` and `--min-factor`, checked on the result before anything is put in place.
struct Gates {
    max_size: Option<u64>,
    min_factor: Option<f64>,
}

impl Gates {
    fn parse(a: &SlimArgs) -> Result<Gates, Error> {
        let max_size = a.max_size.as_deref().map(|v| super::ci::bytes("--max-size", v)).transpose()?;
        if let Some(f) = a.min_factor.filter(|f| !(f.is_finite() && *f > 0.0)) {
            return Err(Error::Usage(format!("--min-factor {f}: expected a number above 0, like 4")));
        }
        Ok(Gates { max_size, min_factor: a.min_factor })
    }

    /// Exit 3 naming the gate missed and by how much; the outputs are dropped, not placed.
    fn check(&self, acc: &report::Accounting) -> CmdResult {
        let Some(after) = &acc.after else { return Ok(()) };
        let (before, after) = (acc.before.uncompressed, after.uncompressed);
        if let Some(max) = self.max_size.filter(|m| after > *m) {
            return Err(Error::Policy(format!("--max-size {}: the slimmed image is {} ({} bytes over), nothing written", report::human(max), report::human(after), after - max)));
        }
        let factor = before as f64 / after.max(1) as f64;
        if let Some(min) = self.min_factor.filter(|m| factor < *m) {
            return Err(Error::Policy(format!("--min-factor {min}: {} -> {} is {factor:.2}x, nothing written", report::human(before), report::human(after))));
        }
        Ok(())
    }
}

/// Config edits from the flags, checked before any work.
struct Edits {
    env_set: Vec<(String, String)>,
    labels: Vec<(String, String)>,
    entrypoint: Option<Value>,
    cmd: Option<Value>,
    profile_names: Vec<String>,
    profile_files: Vec<PathBuf>,
}

impl Edits {
    fn parse(a: &SlimArgs) -> Result<Edits, Error> {
        let (mut profile_names, mut profile_files) = (Vec::new(), Vec::new());
        for p in &a.profiles {
            if p.ends_with(".toml") || p.contains('/') {
                check_profile_file(Path::new(p))?;
                profile_files.push(PathBuf::from(p));
            } else {
                profile_names.push(p.clone());
            }
        }
        Ok(Edits {
            env_set: kv(&a.env, "--env")?,
            labels: kv(&a.labels, "--label")?,
            entrypoint: a.entrypoint.as_deref().map(|s| json_array(s, "--entrypoint")).transpose()?,
            cmd: a.cmd.as_deref().map(|s| json_array(s, "--cmd")).transpose()?,
            profile_names,
            profile_files,
        })
    }

    /// The config the slimmed image will run with: it decides what the image needs.
    fn apply(&self, a: &SlimArgs, cfg: &mut Value) {
        if let Some(v) = &self.entrypoint {
            config::set_runtime(cfg, "Entrypoint", Some(v.clone()));
        }
        if let Some(v) = &self.cmd {
            config::set_runtime(cfg, "Cmd", Some(v.clone()));
        }
        if let Some(u) = &a.user {
            config::set_runtime(cfg, "User", Some(Value::String(u.clone())));
        }
        if !self.env_set.is_empty() || !a.unset_env.is_empty() {
            config::edit_env(cfg, &self.env_set, &a.unset_env);
        }
    }
}

/// `--package-db`, or the level's default: at `--level traced` the distroless layout, which
/// describes the same packages as prune (scanners read it) without dpkg's maintainer scripts,
/// templates and symbol files (1.4 MB of a 24 MB python-web).
fn package_db(a: &SlimArgs) -> crate::pkgdb::Mode {
    match (a.package_db, a.level) {
        (Some(m), _) => m,
        (None, Level::Traced) => crate::pkgdb::Mode::StatusD,
        (None, _) => crate::pkgdb::Mode::Prune,
    }
}

/// A profile file is read before any work: a bad one is the user's file, exit 1.
fn check_profile_file(f: &Path) -> Result<(), Error> {
    let mut set = crate::profile::ProfileSet::builtin().map_err(|e| Error::Other(format!("builtin profiles: {e}")))?;
    set.add_file(f).map(|_| ()).map_err(|e| {
        // One line: TOML errors quote the source over several.
        let msg = e.to_string();
        let lines: Vec<&str> = msg.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('|') && !l.contains(" | ")).collect();
        Error::input(format!("--profile {}", f.display()), lines.join(": "))
    })
}

/// What `slim` does with the plan: explain only, print it (dry run), or write the image.
fn mode(a: &SlimArgs) -> (bool, bool) {
    let explain_only = !a.explain.is_empty() && a.output.output.is_none() && !a.dry_run;
    (explain_only, a.dry_run || explain_only)
}

fn slim(a: &SlimArgs, edits: &Edits, gates: &Gates, work: &Path, outs: &mut Outputs) -> CmdResult {
    let t0 = Instant::now();
    let (explain_only, no_image) = mode(a);
    let img = common::open(&a.input, work)?;
    if let Some(p) = common::input_path(&a.input) {
        outs.protect_input(&p);
    }
    let (out_args, push_to) = super::remote::redirect_push(&a.output, work);
    let image_out = if no_image { None } else { Some(out_args.prepare(&img, outs)?) };
    let report_out = a.report.as_deref().filter(|_| !explain_only).map(|r| outs.add("--report", r, Kind::File)).transpose()?;
    let html_out = super::html::add(outs, a.html.as_deref().filter(|_| !no_image))?;
    let sbom_out = a.sbom.as_deref().filter(|_| !no_image).map(|r| outs.add("--sbom", r, Kind::File)).transpose()?;
    let mut loaded = common::load(img, work)?;
    let mut acc = accounting(&loaded);
    let mut cfg = loaded.image.config.clone();
    edits.apply(a, &mut cfg);
    let mut notes = Vec::new();
    let mut plan = ui::step("plan (roots, ELF closure, profiles)", || make_plan(a, edits, &mut loaded, &mut cfg, &mut notes, work))?;
    let pkgdb = crate::pkgdb::rewrite(&loaded.tree, &loaded.store, &plan, package_db(a))?;
    pkgdb.overrule(&mut plan);
    notes.extend(pkgdb.notes());
    let secrets = ui::step("scan for secrets", || secrets_step(a, &loaded, &mut plan, &mut cfg, &mut notes));
    let left = secrets.iter().filter(|o| o.status.starts_with("left")).count();
    for p in &a.explain {
        ui::info(&explain(&plan, &loaded.tree, &loaded.store, p));
    }
    if explain_only {
        return Ok(());
    }
    let mut report = Report {
        input: a.input.image.clone(),
        packages: serde_json::to_value(&pkgdb.packages).map_err(|e| Error::Other(e.to_string()))?,
        pack: Value::Null,
        slot: report_out,
        output: Value::Null,
        options: options(a),
        secrets: serde_json::to_value(&secrets).map_err(|e| Error::Other(e.to_string()))?,
    };
    if a.strict && !plan.risks.is_empty() {
        ui::info(&report::summary(&plan, &acc, &notes));
        return Err(Error::Policy(format!("--strict: {} risk(s), nothing written; first: {}", plan.risks.len(), plan.risks[0])));
    }
    if a.strict && left > 0 {
        ui::info(&report::summary(&plan, &acc, &notes));
        return Err(Error::Policy(format!("--strict: {left} secret(s) would be left in the image, nothing written (--scrub-secrets removes them)")));
    }
    plan.apply(&mut loaded.tree);
    pkgdb.write_into(&mut loaded.tree, &mut loaded.store)?;
    report.pack = pack(a, &plan, &mut loaded, &mut acc, &mut notes)?;
    let wopts = WriteOptions { clamp_mtime: config::source_date_epoch(), ..Default::default() };
    let Some(image_out) = image_out else {
        // The plan in full, with the size the layer would have: the tar is counted, not written.
        let (Counter(counted), stats) = ui::step_bytes("count the layer", None, || crate::layer::write_tree(&loaded.tree, &loaded.store, Counter(0), &wopts))?;
        acc.after = Some(report::After { uncompressed: counted, stored: None, content: stats.content_bytes, compression: String::new(), dry_run: true });
        ui::info(&report::summary(&plan, &acc, &notes));
        if a.html.is_some() {
            ui::info("--html: not written (--dry-run writes no image and no page)");
        }
        gates.check(&acc)?;
        report.write(outs, &plan, &acc, &notes)?;
        outs.commit()?;
        return report.print(a.json, &plan, &acc, &notes);
    };
    let layer = ui::step_bytes("write the layer", None, || {
        image::build_layer(&loaded.tree, &loaded.store, image_out.compression, outs.scratch(image_out.slot), &wopts)
    })?;
    acc.after = Some(report::After {
        uncompressed: layer.uncompressed_size,
        stored: Some(layer.size),
        content: layer.stats.content_bytes,
        compression: image_out.compression.to_string(),
        dry_run: false,
    });
    let new_cfg = slimmed_config(a, edits, &loaded, cfg.clone(), &plan, &layer);
    if let Some(h) = html_out {
        let after = Sizes { uncompressed: layer.uncompressed_size, compressed: layer.size };
        let page = crate::report::html::Report {
            input: &report.input,
            mode: crate::report::html::Mode::Slim(&plan),
            entries: &plan.entries,
            notes: &notes,
            layers: super::html::layers(&loaded),
            config_before: &loaded.image.config,
            config_after: Some(&new_cfg),
            before: acc.before,
            after: Some(after),
            packages: Some(&report.packages),
        };
        super::html::write(outs, h, &page)?;
    }
    let diff_id = layer.diff_id.to_string();
    let manifest = write_image(&loaded, new_cfg, layer, &image_out, outs)?;
    if let Some(slot) = sbom_out {
        let (mut subject, pkgs, unread) = ui::step("SBOM", || crate::sbom::collect(&loaded.tree, &loaded.store));
        sbom_gaps(a, &mut plan, &acc, &notes, unread)?;
        subject.image = outs.given(image_out.slot).to_string();
        subject.diff_id = diff_id;
        subject.created = config::created_for(&cfg).unwrap_or_else(|| config::rfc3339(0));
        write_report(outs, slot, &crate::sbom::render(a.sbom_format, &subject, &pkgs))?;
    }
    if let Err(e) = gates.check(&acc) {
        ui::info(&report::summary(&plan, &acc, &notes));
        return Err(e);
    }
    report.output = common::output_json(outs, &image_out, &manifest);
    report.write(outs, &plan, &acc, &notes)?;
    ui::step("put the outputs in place", || outs.commit())?;
    if let Some(t) = &push_to {
        ui::step("push", || super::remote::push_output(&super::remote::staging_output(work), t, &a.input))?;
    }
    ui::info(&report::summary(&plan, &acc, &notes));
    ui::info(&format!("{} in {:.1}s", common::wrote(outs, &image_out, &manifest), t0.elapsed().as_secs_f64()));
    report.print(a.json, &plan, &acc, &notes)?;
    if a.verify {
        crate::sandbox::session::catch_interrupts();
        let candidate = common::InputArgs { image: outs.given(image_out.slot).to_string(), platform: a.input.platform.clone(), insecure_registry: a.input.insecure_registry.clone() };
        let opts = sandbox_run(a, &cfg, true);
        super::verify::compare(&a.input, &candidate, &opts, &a.probes, work, false)?;
    }
    Ok(())
}

/// Archives the SBOM could not read leave it incomplete: a warning in the summary and the
/// JSON, and under --strict a refusal (exit 3, nothing written), like the plan's risks.
fn sbom_gaps(a: &SlimArgs, plan: &mut crate::plan::Plan, acc: &report::Accounting, notes: &[String], unread: Vec<String>) -> Result<(), Error> {
    let first = unread.first().cloned();
    plan.warnings.extend(unread.iter().map(|w| format!("sbom: {w}")));
    match first {
        Some(first) if a.strict => {
            ui::info(&report::summary(plan, acc, notes));
            Err(Error::Policy(format!("--strict: the SBOM would miss {} archive(s) it could not read, nothing written; first: {first}", unread.len())))
        }
        _ => Ok(()),
    }
}

/// How the --trace and --verify runs start the app: as the slimmed image will (the config
/// edits --entrypoint, --cmd, --env, --user), with `-- ARGS` replacing Cmd, as `run` does.
fn sandbox_run(a: &SlimArgs, edited: &Value, capture: bool) -> crate::sandbox::session::RunOptions {
    let list = |k: &str| config::string_list(config::runtime(edited, k));
    let command_edited = a.entrypoint.is_some() || a.cmd.is_some();
    let args = if a.args.is_empty() && command_edited { list("Cmd") } else { a.args.clone() };
    let overrides = crate::sandbox::process::Overrides { entrypoint: command_edited.then(|| list("Entrypoint")), args, env: a.env.clone(), user: a.user.clone() };
    crate::sandbox::session::RunOptions { overrides, capture, ..Default::default() }
}

/// Counts the bytes of a tar that a dry run does not write.
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The input's sizes, for the summary's waterfall.
fn accounting(loaded: &common::Loaded) -> report::Accounting {
    report::Accounting {
        before: loaded.sizes(),
        before_plain: loaded.layer_stats.iter().all(|s| s.compressed == s.uncompressed),
        layers: loaded.layer_stats.len(),
        layers_content: loaded.content_bytes,
        ..Default::default()
    }
}

/// `--pack`: every executable packed or skipped, with its reason (also in a dry run).
fn pack(a: &SlimArgs, plan: &plan::Plan, loaded: &mut common::Loaded, acc: &mut report::Accounting, notes: &mut Vec<String>) -> Result<Value, Error> {
    if !a.pack {
        return Ok(Value::Null);
    }
    let opts = crate::pack::PackOptions { method: a.pack_method.into(), level: a.pack_level, ..Default::default() };
    let packed = ui::step("pack executables", || crate::pack::pack_tree(&mut loaded.tree, &mut loaded.store, &opts))
        .map_err(|e| Error::Other(format!("packing: {e}")))?;
    for r in &packed {
        notes.push(format!("pack {}: {}", report::summary::canonical_name(plan, &r.path), r.decision));
        if let Some(p) = r.packed {
            acc.packed += 1;
            acc.packing_saved += r.original.saturating_sub(p);
        }
    }
    serde_json::to_value(&packed).map_err(|e| Error::Other(e.to_string()))
}

/// The slimmed image's config: labels naming the source, the new layer, its history entry.
fn slimmed_config(a: &SlimArgs, edits: &Edits, loaded: &common::Loaded, mut cfg: Value, plan: &plan::Plan, layer: &image::LayerOut) -> Value {
    let mut source_labels = vec![("io.imgslim.source.config-digest".to_string(), loaded.image.config_digest.to_string())];
    if let Some(m) = &loaded.image.manifest_digest {
        source_labels.push(("io.imgslim.source.digest".to_string(), m.to_string()));
    }
    source_labels.extend(edits.labels.iter().cloned());
    config::add_labels(&mut cfg, &source_labels);
    let level = format!("{:?}", a.level).to_lowercase();
    let kept = plan.entries.iter().filter(|e| e.keep).count();
    let comment = format!("{level}: kept {kept} of {} paths", plan.entries.len());
    config::with_new_layers(&cfg, std::slice::from_ref(&layer.diff_id), &format!("imgslim slim --level {level}"), &comment)
}

/// The image around the new layer, with its name:tag.
fn write_image(loaded: &common::Loaded, new_cfg: Value, layer: image::LayerOut, image_out: &common::ImageOut, outs: &Outputs) -> Result<crate::digest::Digest, Error> {
    let (ref_name, repo_tags) = common::output_refs(&loaded.image, image_out, SLIM_TAG_SUFFIX);
    ui::step("write the image", || {
        image::write_image(image::OutputImage { config: new_cfg, layers: vec![layer], ref_name, repo_tags }, image_out.format, &outs.path(image_out.slot))
    })
}

/// The flags that shaped the plan, for the `--report` and `--json` documents.
fn options(a: &SlimArgs) -> Value {
    serde_json::json!({
        "level": a.level,
        "profiles": a.profiles,
        "keep": a.keep,
        "drop": a.drop,
        "distroless": a.distroless,
        "package_db": package_db(a),
        "pack": a.pack,
        "trace": a.trace,
        "from_trace": a.from_trace,
        "compression": a.output.compression.unwrap_or_default().to_string(),
        "max_size": a.max_size,
        "min_factor": a.min_factor,
        "scrub_secrets": a.scrub_secrets,
    })
}

/// The `--report` JSON, written with the outputs (or to stdout for `-`), and `--json`.
struct Report {
    input: String,
    packages: Value,
    pack: Value,
    slot: Option<Slot>,
    /// The written image (null in a dry run).
    output: Value,
    options: Value,
    secrets: Value,
}

impl Report {
    /// `--json`: the result in one document (the plan's paths are the `--report`'s).
    fn print(&self, json: bool, plan: &plan::Plan, acc: &report::Accounting, notes: &[String]) -> CmdResult {
        if !json {
            return Ok(());
        }
        let mut v = report::result_json(plan, &self.input, acc, notes);
        v["output"] = self.output.clone();
        v["options"] = self.options.clone();
        common::print_json(&v)
    }

    fn write(&self, outs: &Outputs, plan: &plan::Plan, acc: &report::Accounting, notes: &[String]) -> CmdResult {
        let Some(slot) = self.slot else { return Ok(()) };
        let mut v = report::json_report(plan, &self.input, acc, notes);
        v["output"] = self.output.clone();
        v["options"] = self.options.clone();
        if !self.pack.is_null() {
            v["pack"] = self.pack.clone();
        }
        v["packages"] = self.packages.clone();
        v["secrets"] = self.secrets.clone();
        write_report(outs, slot, &v)
    }
}

/// Find secrets in the config about to be written and in the tree; with --scrub-secrets,
/// redact and drop them. Each finding is a warning line with its outcome.
fn secrets_step(a: &SlimArgs, loaded: &common::Loaded, plan: &mut plan::Plan, cfg: &mut Value, notes: &mut Vec<String>) -> Vec<crate::secrets::Outcome> {
    let found = crate::secrets::scan_image(cfg, &loaded.tree, &loaded.store);
    let (outcomes, drop) = crate::secrets::plan_scrub(&found, plan, a.scrub_secrets);
    crate::secrets::overrule(plan, &drop);
    if a.scrub_secrets {
        notes.extend(crate::secrets::scrub_config(cfg, &found));
    }
    for o in &outcomes {
        ui::info(&format!("warning: secret: {} [{}]", o.finding, o.status));
    }
    if !outcomes.is_empty() {
        let left = outcomes.iter().filter(|o| o.status.starts_with("left")).count();
        notes.push(format!("secrets: {} found, {left} left in the image{}", outcomes.len(), if left > 0 && !a.scrub_secrets { " (--scrub-secrets removes them)" } else { "" }));
    }
    outcomes
}

/// Appended to the input's tag in a slimmed image's name:tag (docker-archive RepoTags and
/// io.containerd.image.name), so loading it never replaces the original in a store.
pub const SLIM_TAG_SUFFIX: &str = "-slim";

/// Plan what stays; with --distroless, switch to a nonroot user unless the app starts as root.
fn make_plan(a: &SlimArgs, edits: &Edits, loaded: &mut common::Loaded, cfg: &mut Value, notes: &mut Vec<String>, work: &Path) -> Result<plan::Plan, Error> {
    let original_user = config::runtime(cfg, "User").cloned();
    let mut switched_user = false;
    if a.distroless {
        notes.extend(distroless::prepare(&mut loaded.tree, &mut loaded.store)?);
        let user = original_user.as_ref().and_then(Value::as_str).map(str::to_string);
        if a.user.is_none() && distroless::runs_as_root(user.as_deref()) {
            config::set_runtime(cfg, "User", Some(Value::String("65532:65532".into())));
            switched_user = true;
        }
    }
    let run = a.trace.then(|| sandbox_run(a, cfg, false));
    let traced = super::trace::traced_needs(run.as_ref(), &a.from_trace, &a.probes, loaded, work)?;
    let opts = PlanOptions {
        traced,
        level: a.level,
        profiles: edits.profile_names.clone(),
        profile_files: edits.profile_files.clone(),
        keep: a.keep.clone(),
        drop: a.drop.clone(),
        distroless: a.distroless,
    };
    let mut plan = plan::build(&loaded.tree, &loaded.store, cfg, &opts)?;
    if switched_user {
        if plan.starts_as_root.is_empty() {
            notes.push("the image ran as root: User set to nonroot (65532:65532); pass --user root to keep root".into());
        } else {
            // Such a runtime breaks as nonroot (pid file, logs); it drops privileges itself.
            config::set_runtime(cfg, "User", original_user);
            notes.push(format!("User left as root: {} starts as root and drops privileges itself", plan.starts_as_root.join(", ")));
            plan = plan::build(&loaded.tree, &loaded.store, cfg, &opts)?;
        }
    }
    Ok(plan)
}

/// `--explain` for a path as the user wrote it: through symlinked directories (`/bin/sh` on a
/// merged-/usr image is `/usr/bin/sh`), the decision of the path that actually holds it.
fn explain(plan: &plan::Plan, tree: &crate::fs::Tree, store: &crate::fs::ContentStore, p: &str) -> String {
    if plan.find(p).is_some() {
        return plan.explain(p);
    }
    match (plan::TreeFs { tree, store }).location(p) {
        Some((real, via)) if plan.find(&real).is_some() && !via.is_empty() => {
            format!("{p} is {real} (through the symlink {}):\n{}", via.join(", "), plan.explain(&real))
        }
        _ => plan.explain(p),
    }
}

fn write_report(outs: &Outputs, slot: Slot, v: &Value) -> CmdResult {
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| Error::Other(format!("serialising the report: {e}")))?;
    let p = outs.path(slot);
    std::fs::write(&p, bytes).at(&p)?;
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).at(&p)
}
#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        slim: SlimArgs,
    }

    fn db(args: &[&str]) -> crate::pkgdb::Mode {
        let cli = Cli::try_parse_from(["slim", "img"].iter().chain(args)).unwrap();
        package_db(&cli.slim)
    }

    #[test]
    fn package_db_defaults_to_status_d_only_at_level_traced() {
        use crate::pkgdb::Mode;
        assert_eq!(db(&[]), Mode::Prune);
        assert_eq!(db(&["--level", "clean"]), Mode::Prune);
        assert_eq!(db(&["--level", "traced"]), Mode::StatusD);
        assert_eq!(db(&["--level", "traced", "--package-db", "prune"]), Mode::Prune);
        assert_eq!(db(&["--package-db", "drop"]), Mode::Drop);
    }
}
