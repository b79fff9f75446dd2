use super::common::{self, InputArgs, OutputArgs};
use super::remote;
use super::CmdResult;
use crate::error::Error;
use crate::image::{self, config};
use crate::layer::WriteOptions;
use crate::plan::{self, distroless, Level, PlanOptions};
use crate::report::{self, Sizes};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct SlimArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output path (required unless --dry-run).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub format: Option<image::Format>,
    #[arg(long, value_enum)]
    pub compression: Option<image::Compression>,
    #[arg(long, value_name = "NAME:TAG")]
    pub tag: Option<String>,
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
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Entrypoint as a JSON array, e.g. '["/app/server"]'.
    #[arg(long, value_name = "JSON")]
    pub entrypoint: Option<String>,
    /// Cmd as a JSON array.
    #[arg(long, value_name = "JSON")]
    pub cmd: Option<String>,
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    #[arg(long = "unset-env", value_name = "K")]
    pub unset_env: Vec<String>,
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Write the full plan as JSON (every path with its decision and reason).
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Print why PATH is kept or dropped.
    #[arg(long, value_name = "PATH")]
    pub explain: Vec<String>,
    /// Print the plan without writing an image.
    #[arg(long)]
    pub dry_run: bool,
    /// Pack large executables UPX-style (each packed or skipped binary is listed with its reason).
    #[arg(long)]
    pub pack: bool,
    /// Packing method: auto (lzma up to 1 MiB of code and data, where its
    /// decoding takes ~25 ms or less; zstd above), lzma (smallest) or zstd
    /// (fastest start-up).
    #[arg(long, value_enum, default_value = "auto", requires = "pack")]
    pub pack_method: crate::pack::cli::MethodArg,
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
    let t0 = Instant::now();
    if a.output.is_none() && !a.dry_run {
        return Err(Error::Usage("slim needs -o OUT (or --dry-run)".into()));
    }
    let env_set = kv(&a.env, "--env")?;
    let labels = kv(&a.labels, "--label")?;
    let entrypoint = a.entrypoint.as_deref().map(|s| json_array(s, "--entrypoint")).transpose()?;
    let cmd = a.cmd.as_deref().map(|s| json_array(s, "--cmd")).transpose()?;
    let (mut profile_names, mut profile_files) = (Vec::new(), Vec::new());
    for p in &a.profiles {
        if p.ends_with(".toml") || p.contains('/') {
            profile_files.push(PathBuf::from(p));
        } else {
            profile_names.push(p.clone());
        }
    }

    let work = common::work_area()?;
    let mut loaded = common::load(&a.input, work.path())?;
    let before = Sizes {
        uncompressed: loaded.layer_stats.iter().map(|s| s.uncompressed).sum(),
        compressed: loaded.layer_stats.iter().map(|s| s.compressed).sum(),
    };
    let (mut format, compression) = match &a.output {
        Some(o) => OutputArgs { output: o.clone(), format: a.format, compression: a.compression, tag: a.tag.clone() }.resolve(&loaded.image)?,
        None => (image::Format::Oci, image::Compression::Gzip),
    };
    let push_to = a.output.as_deref().and_then(remote::push_target);
    let staged = push_to.as_ref().map(|_| {
        format = image::Format::Oci;
        remote::staging_output(work.path())
    });

    // The config the slimmed image will run with decides what it needs.
    let mut cfg = loaded.image.config.clone();
    if let Some(v) = entrypoint {
        config::set_runtime(&mut cfg, "Entrypoint", Some(v));
    }
    if let Some(v) = cmd {
        config::set_runtime(&mut cfg, "Cmd", Some(v));
    }
    if let Some(u) = &a.user {
        config::set_runtime(&mut cfg, "User", Some(Value::String(u.clone())));
    }
    if !env_set.is_empty() || !a.unset_env.is_empty() {
        config::edit_env(&mut cfg, &env_set, &a.unset_env);
    }
    let mut notes = Vec::new();
    let original_user = config::runtime(&cfg, "User").cloned();
    let mut switched_user = false;
    if a.distroless {
        notes.extend(distroless::prepare(&mut loaded.tree, &mut loaded.store)?);
        let user = original_user.as_ref().and_then(Value::as_str).map(str::to_string);
        if a.user.is_none() && distroless::runs_as_root(user.as_deref()) {
            config::set_runtime(&mut cfg, "User", Some(Value::String("65532:65532".into())));
            switched_user = true;
        }
    }
    let opts = PlanOptions {
        level: a.level,
        profiles: profile_names,
        profile_files,
        keep: a.keep.clone(),
        drop: a.drop.clone(),
        distroless: a.distroless,
    };
    let mut plan = plan::build(&loaded.tree, &loaded.store, &cfg, &opts)?;
    if switched_user {
        if plan.starts_as_root.is_empty() {
            notes.push("the image ran as root: User set to nonroot (65532:65532); pass --user root to keep root".into());
        } else {
            // Such a runtime breaks as nonroot (pid file, logs); it drops privileges itself.
            config::set_runtime(&mut cfg, "User", original_user);
            notes.push(format!(
                "User left as root: {} starts as root and drops privileges itself",
                plan.starts_as_root.join(", ")
            ));
            plan = plan::build(&loaded.tree, &loaded.store, &cfg, &opts)?;
        }
    }
    for p in &a.explain {
        println!("{}", explain(&plan, &loaded.tree, &loaded.store, p));
    }
    let input = a.input.image.clone();
    let Some(out) = staged.as_ref().or(a.output.as_ref()).filter(|_| !a.dry_run) else {
        print!("{}", report::summary(&plan, before, None, &notes));
        if let Some(r) = &a.report {
            write_report(r, &report::json_report(&plan, &input, before, None, &notes))?;
        }
        return Ok(());
    };

    plan.apply(&mut loaded.tree);
    let mut packed = Vec::new();
    if a.pack {
        let opts = crate::pack::PackOptions { method: a.pack_method.into(), ..Default::default() };
        packed = crate::pack::pack_tree(&mut loaded.tree, &mut loaded.store, &opts).map_err(|e| Error::Other(format!("packing: {e}")))?;
        for r in &packed {
            notes.push(format!("pack {}: {}", r.path, r.decision));
        }
    }
    let wopts = WriteOptions { clamp_mtime: config::source_date_epoch() };
    let layer = image::build_layer(&loaded.tree, &loaded.store, compression, out, &wopts)?;
    let after = Sizes { uncompressed: layer.uncompressed_size, compressed: layer.size };
    let mut source_labels = vec![("io.imgslim.source.config-digest".to_string(), loaded.image.config_digest.to_string())];
    if let Some(m) = &loaded.image.manifest_digest {
        source_labels.push(("io.imgslim.source.digest".to_string(), m.to_string()));
    }
    source_labels.extend(labels);
    config::add_labels(&mut cfg, &source_labels);
    let level = format!("{:?}", a.level).to_lowercase();
    let kept = plan.entries.iter().filter(|e| e.keep).count();
    let comment = format!("{level}: kept {kept} of {} paths", plan.entries.len());
    let new_cfg = config::with_new_layers(&cfg, std::slice::from_ref(&layer.diff_id), &format!("imgslim slim --level {level}"), &comment);
    let (ref_name, repo_tags) = common::output_refs(&loaded.image, a.tag.as_deref());
    image::write_image(image::OutputImage { config: new_cfg, layers: vec![layer], ref_name, repo_tags }, format, out)?;
    print!("{}", report::summary(&plan, before, Some(after), &notes));
    match &push_to {
        Some(t) => remote::push_output(out, t, &a.input)?,
        None => println!("wrote {} in {:.1}s", out.display(), t0.elapsed().as_secs_f64()),
    }
    if let Some(r) = &a.report {
        let mut v = report::json_report(&plan, &input, before, Some(after), &notes);
        v["pack"] = serde_json::to_value(&packed).map_err(|e| Error::Other(e.to_string()))?;
        write_report(r, &v)?;
    }
    Ok(())
}

/// `--explain` for a path as the user wrote it: through symlinked directories (`/bin/sh` on a
/// merged-/usr image is `/usr/bin/sh`), the decision of the path that actually holds it.
fn explain(plan: &plan::Plan, tree: &crate::fs::Tree, store: &crate::fs::ContentStore, p: &str) -> String {
    if plan.find(p).is_some() {
        return plan.explain(p);
    }
    match (plan::TreeFs { tree, store }).location(p) {
        Some((real, via)) if plan.find(&real).is_some() => {
            format!("{p} is {real} (through {}): {}", via.join(", "), plan.explain(&real))
        }
        _ => plan.explain(p),
    }
}

fn write_report(path: &std::path::Path, v: &Value) -> CmdResult {
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| Error::Other(format!("serialising the report: {e}")))?;
    image::write_atomic(path, &bytes)
}
