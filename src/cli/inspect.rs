use super::common::{self, human, InputArgs};
use super::CmdResult;
use crate::image::config::{runtime, string_list};
use serde_json::{json, Value};

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write a self-contained HTML page: treemap of the image, layers, config, path search.
    #[arg(long, value_name = "FILE.html", conflicts_with = "ci")]
    pub html: Option<String>,
    /// Replace an existing --html file.
    #[arg(long, requires = "html")]
    pub force: bool,
    #[command(flatten)]
    pub ci: super::ci::CiArgs,
}

pub fn run(a: &InspectArgs) -> CmdResult {
    if a.ci.ci {
        return super::ci::run(&a.input, &a.ci);
    }
    let work = common::work_area()?;
    // The transaction places --html, and names work-area errors as the user knows them.
    let mut outs = super::outputs::Outputs::new(a.force, work.path());
    if let Some(p) = common::input_path(&a.input) {
        outs.protect_input(&p);
    }
    let html_out = super::html::add(&mut outs, a.html.as_deref())?;
    let l = common::open(&a.input, work.path()).and_then(|img| common::load_with_layers(img, work.path())).map_err(|e| outs.user_error(e))?;
    let secrets = super::ui::step("scan for secrets", || crate::secrets::scan_image(&l.image.config, &l.tree, &l.store));
    let summary = facts(&a.input.image, &l, &secrets);
    if let Some(h) = html_out {
        write_html(&a.input.image, &l, &mut outs, h).map_err(|e| outs.user_error(e))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary).map_err(|e| crate::error::Error::Other(e.to_string()))?);
        return Ok(());
    }
    print!("{}", text(&summary));
    println!("Secrets:      {}", if secrets.is_empty() { "none found".to_string() } else { format!("{} found (slim --scrub-secrets removes them)", secrets.len()) });
    for f in &secrets {
        println!("  {f}");
    }
    Ok(())
}

/// Wasted files listed (largest first); the JSON and the totals count them all.
const WASTED_SHOWN: usize = 20;

/// Everything `inspect` says, as the `--json` document (schema 1).
fn facts(image: &str, l: &common::Loaded, secrets: &[crate::secrets::Finding]) -> Value {
    let cfg = &l.image.config;
    let (wasted_bytes, wasted_files) = l.wasted();
    let (mut files, mut merged_bytes) = (0u64, 0u64);
    let mut seen = std::collections::HashSet::new();
    for (_, id) in l.tree.walk() {
        if let crate::fs::Node::Leaf(ino) = l.tree.node(id) {
            files += 1;
            // Hardlinks share one inode: count its bytes once.
            if seen.insert(*ino) {
                merged_bytes += l.tree.size(id);
            }
        }
    }
    let layers: Vec<Value> = l
        .layer_stats
        .iter()
        .zip(&l.apply_stats)
        .zip(&l.changesets)
        .zip(&l.image.layers)
        .map(|(((s, ap), cs), blob)| {
            json!({
                "digest": s.digest.as_ref().map(|d| d.to_string()),
                "diff_id": s.diff_id.to_string(),
                "media_type": blob.media_type,
                "compressed_size": s.compressed,
                "uncompressed_size": s.uncompressed,
                // Non-directory entries, as the merged tree's count.
                "files": cs.additions.iter().filter(|a| !matches!(a.kind, crate::layer::ChangeKind::Dir(_))).count(),
                "whiteouts": s.whiteouts,
                "wasted_bytes_removed_here": ap.wasted_bytes,
            })
        })
        .collect();
    let exposed: Vec<String> = keys(runtime(cfg, "ExposedPorts"));
    json!({
        "schema": crate::report::SCHEMA,
        "image": image,
        "config_digest": l.image.config_digest.to_string(),
        "manifest_digest": l.image.manifest_digest.as_ref().map(|d| d.to_string()),
        "platform": format!("{}/{}", cfg.get("os").and_then(Value::as_str).unwrap_or("?"), cfg.get("architecture").and_then(Value::as_str).unwrap_or("?")),
        "created": cfg.get("created"),
        "config": {
            "entrypoint": runtime(cfg, "Entrypoint"),
            "cmd": runtime(cfg, "Cmd"),
            "user": runtime(cfg, "User"),
            "env": masked_env(cfg, secrets),
            "workdir": runtime(cfg, "WorkingDir"),
            "exposed_ports": exposed,
            "volumes": keys(runtime(cfg, "Volumes")),
            "stop_signal": runtime(cfg, "StopSignal"),
            "labels": runtime(cfg, "Labels").cloned().unwrap_or_else(|| json!({})),
            "healthcheck": runtime(cfg, "Healthcheck"),
        },
        "history": redacted_history(cfg, secrets),
        "layers": layers,
        "total_compressed_size": l.sizes().compressed,
        "total_uncompressed_size": l.sizes().uncompressed,
        "merged_files": files,
        "merged_content_bytes": merged_bytes,
        "wasted_bytes": wasted_bytes,
        "wasted_files": wasted_files,
        "wasted": crate::report::ci::wasted_files(&l.changesets),
        "secrets": secrets,
    })
}

fn keys(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// The human page: config, layers, totals, the largest wasted files.
/// The history with the lines that hold secrets redacted, as `slim --scrub-secrets` writes them.
fn redacted_history(cfg: &Value, secrets: &[crate::secrets::Finding]) -> Value {
    let mut shown = cfg.clone();
    crate::secrets::scrub_config(&mut shown, secrets);
    shown.get("history").cloned().unwrap_or_else(|| json!([]))
}

/// Env values found to be secrets are shown masked, like the findings.
fn masked_env(cfg: &Value, secrets: &[crate::secrets::Finding]) -> Vec<String> {
    string_list(runtime(cfg, "Env"))
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) if secrets.iter().any(|f| f.place == crate::secrets::Place::Env { key: k.to_string() }) => format!("{k}={}", crate::secrets::rules::mask(v)),
            _ => e,
        })
        .collect()
}

fn text(f: &Value) -> String {
    use std::fmt::Write as _;
    let show = |v: &Value| if v.is_null() { "-".to_string() } else { v.to_string() };
    let list = |v: &Value| v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")).filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into());
    let c = &f["config"];
    let mut s = String::new();
    let _ = writeln!(s, "Image:        {} ({})", f["image"].as_str().unwrap_or("?"), f["platform"].as_str().unwrap_or("?"));
    let _ = writeln!(s, "Config:       {}", f["config_digest"].as_str().unwrap_or("?"));
    let _ = writeln!(s, "Created:      {}", f["created"].as_str().unwrap_or("-"));
    for (k, v) in [("Entrypoint", &c["entrypoint"]), ("Cmd", &c["cmd"]), ("User", &c["user"]), ("WorkingDir", &c["workdir"]), ("StopSignal", &c["stop_signal"])] {
        let _ = writeln!(s, "{:<14}{}", format!("{k}:"), show(v));
    }
    let _ = writeln!(s, "ExposedPorts: {}", list(&c["exposed_ports"]));
    let _ = writeln!(s, "Volumes:      {}", list(&c["volumes"]));
    for e in c["env"].as_array().into_iter().flatten() {
        let _ = writeln!(s, "Env:          {}", e.as_str().unwrap_or(""));
    }
    for (k, v) in c["labels"].as_object().into_iter().flatten() {
        let _ = writeln!(s, "Label:        {k}={}", v.as_str().unwrap_or(""));
    }
    let _ = writeln!(s, "\n{:>3}  {:<23}  {:<5}  {:>11}  {:>12}  {:>7}  {:>9}", "#", "LAYER", "TYPE", "STORED", "UNCOMPRESSED", "FILES", "WHITEOUTS");
    let history: Vec<&Value> = f["history"].as_array().into_iter().flatten().filter(|h| h["empty_layer"] != true).collect();
    for (i, ly) in f["layers"].as_array().into_iter().flatten().enumerate() {
        let d = ly["digest"].as_str().or(ly["diff_id"].as_str()).unwrap_or("?");
        let name: String = d.trim_start_matches("sha256:").chars().take(16).collect();
        let mt = ly["media_type"].as_str().unwrap_or("");
        let kind = if mt.ends_with("gzip") { "gzip" } else if mt.ends_with("zstd") { "zstd" } else { "tar" };
        let n = |k: &str| ly[k].as_u64().unwrap_or(0);
        let _ = writeln!(s, "{i:>3}  sha256:{name:<16}  {kind:<5}  {:>11}  {:>12}  {:>7}  {:>9}", human(n("compressed_size")), human(n("uncompressed_size")), n("files"), n("whiteouts"));
        if let Some(by) = history.get(i).and_then(|h| h["created_by"].as_str()) {
            let by: String = by.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(70).collect();
            let _ = writeln!(s, "     {by}");
        }
    }
    let n = |k: &str| f[k].as_u64().unwrap_or(0);
    let layers = f["layers"].as_array().map_or(0, Vec::len) as u64;
    let _ = writeln!(s, "\nTotal:        {}, {} stored, {} uncompressed", crate::report::summary::plural(layers, "layer"), human(n("total_compressed_size")), human(n("total_uncompressed_size")));
    let _ = writeln!(s, "Merged tree:  {}, {} of content", crate::report::summary::plural(n("merged_files"), "file"), human(n("merged_content_bytes")));
    let _ = writeln!(s, "Wasted:       {} in {} deleted or overwritten by later layers", human(n("wasted_bytes")), crate::report::summary::plural(n("wasted_files"), "file"));
    for w in f["wasted"].as_array().into_iter().flatten().take(WASTED_SHOWN) {
        let _ = writeln!(s, "  {:>9}  {} (layer {}, hidden by layer {})", human(w["bytes"].as_u64().unwrap_or(0)), w["path"].as_str().unwrap_or(""), w["layer"], w["hidden_by"]);
    }
    s
}

fn write_html(input: &str, l: &common::Loaded, outs: &mut super::outputs::Outputs, slot: super::outputs::Slot) -> CmdResult {
    let entries = super::html::entries(l);
    let wasted = crate::report::ci::wasted_files(&l.changesets);
    let page = crate::report::html::Report {
        input,
        mode: crate::report::html::Mode::Inspect { wasted: &wasted },
        entries: &entries,
        notes: &[],
        layers: super::html::layers(l),
        config_before: &l.image.config,
        config_after: None,
        before: l.sizes(),
        after: None,
        packages: None,
    };
    super::html::write(outs, slot, &page)?;
    outs.commit()
}
