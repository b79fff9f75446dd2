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
    #[command(flatten)]
    pub ci: super::ci::CiArgs,
}

pub fn run(a: &InspectArgs) -> CmdResult {
    if a.ci.ci {
        return super::ci::run(&a.input, &a.ci);
    }
    let work = common::work_area()?;
    // No outputs: the transaction only names work-area errors as the user knows them.
    let outs = super::outputs::Outputs::new(false, work.path());
    let l = common::open(&a.input, work.path()).and_then(|img| common::load(img, work.path())).map_err(|e| outs.user_error(e))?;
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
        .map(|(s, ap)| {
            json!({
                "digest": s.digest.as_ref().map(|d| d.to_string()),
                "diff_id": s.diff_id.to_string(),
                "compressed_size": s.compressed,
                "uncompressed_size": s.uncompressed,
                "files": s.files,
                "whiteouts": s.whiteouts,
                "wasted_bytes_removed_here": ap.wasted_bytes,
            })
        })
        .collect();
    let secrets = super::ui::step("scan for secrets", || crate::secrets::scan_image(cfg, &l.tree, &l.store));
    // Env values found to be secrets are shown masked, like the findings.
    let env: Vec<String> = string_list(runtime(cfg, "Env"))
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) if secrets.iter().any(|f| f.place == crate::secrets::Place::Env { key: k.to_string() }) => format!("{k}={}", crate::secrets::rules::mask(v)),
            _ => e,
        })
        .collect();
    let total_c: u64 = l.layer_stats.iter().map(|s| s.compressed).sum();
    let total_u: u64 = l.layer_stats.iter().map(|s| s.uncompressed).sum();
    let exposed: Vec<String> =
        runtime(cfg, "ExposedPorts").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    let summary = json!({
        "image": a.input.image,
        "config_digest": l.image.config_digest.to_string(),
        "manifest_digest": l.image.manifest_digest.as_ref().map(|d| d.to_string()),
        "platform": format!("{}/{}", cfg.get("os").and_then(Value::as_str).unwrap_or("?"), cfg.get("architecture").and_then(Value::as_str).unwrap_or("?")),
        "config": {
            "entrypoint": runtime(cfg, "Entrypoint"),
            "cmd": runtime(cfg, "Cmd"),
            "user": runtime(cfg, "User"),
            "env": env,
            "workdir": runtime(cfg, "WorkingDir"),
            "exposed_ports": exposed,
            "healthcheck": runtime(cfg, "Healthcheck"),
        },
        "layers": layers,
        "total_compressed_size": total_c,
        "total_uncompressed_size": total_u,
        "merged_files": files,
        "merged_content_bytes": merged_bytes,
        "wasted_bytes": wasted_bytes,
        "wasted_files": wasted_files,
        "secrets": secrets,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary).map_err(|e| crate::error::Error::Other(e.to_string()))?);
        return Ok(());
    }
    let show = |v: &Value| if v.is_null() { "-".to_string() } else { v.to_string() };
    println!("Image:        {} ({})", a.input.image, summary["platform"].as_str().unwrap_or("?"));
    println!("Config:       {}", l.image.config_digest);
    println!("Entrypoint:   {}", show(&summary["config"]["entrypoint"]));
    println!("Cmd:          {}", show(&summary["config"]["cmd"]));
    println!("User:         {}", show(&summary["config"]["user"]));
    println!("WorkingDir:   {}", show(&summary["config"]["workdir"]));
    println!("ExposedPorts: {}", if exposed.is_empty() { "-".into() } else { exposed.join(" ") });
    for e in &env {
        println!("Env:          {e}");
    }
    println!();
    println!("{:>3}  {:<23}  {:>11}  {:>12}  {:>7}  {:>9}", "#", "LAYER", "COMPRESSED", "UNCOMPRESSED", "FILES", "WHITEOUTS");
    for (i, s) in l.layer_stats.iter().enumerate() {
        let name = s.digest.as_ref().unwrap_or(&s.diff_id).short().to_string();
        println!("{i:>3}  {name:<23}  {:>11}  {:>12}  {:>7}  {:>9}", human(s.compressed), human(s.uncompressed), s.files, s.whiteouts);
    }
    println!();
    println!("Total:        {} layer(s), {} compressed, {} uncompressed", l.layer_stats.len(), human(total_c), human(total_u));
    println!("Merged tree:  {files} files, {} of content", human(merged_bytes));
    println!("Wasted:       {} in {wasted_files} file(s) deleted or overwritten by later layers", human(wasted_bytes));
    println!("Secrets:      {}", if secrets.is_empty() { "none found".to_string() } else { format!("{} found (slim --scrub-secrets removes them)", secrets.len()) });
    for f in &secrets {
        println!("  {f}");
    }
    Ok(())
}
