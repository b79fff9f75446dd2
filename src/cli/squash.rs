use super::common::{self, human, InputArgs, OutputArgs};
use super::outputs::Outputs;
use super::{ui, CmdResult};
use crate::image::{self, config};
use crate::layer::WriteOptions;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct SquashArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Print the result as one JSON object (schema 1) on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &SquashArgs) -> CmdResult {
    common::check_json_stdout(a.json, &[("-o", a.output.output.as_deref())])?;
    let work = common::work_area()?;
    let mut outs = Outputs::new(a.output.force, work.path());
    squash(a, work.path(), &mut outs).map_err(|e| outs.user_error(e))
}

fn squash(a: &SquashArgs, work: &std::path::Path, outs: &mut Outputs) -> CmdResult {
    let t0 = Instant::now();
    let img = common::open(&a.input, work)?;
    if let Some(p) = common::input_path(&a.input) {
        outs.protect_input(&p);
    }
    let (out_args, push_to) = super::remote::redirect_push(&a.output, work);
    let out = out_args.prepare(&img, outs)?;
    let loaded = common::load(img, work)?;
    // The store's last reader: its spools are freed as the layer is written.
    let wopts = WriteOptions { clamp_mtime: config::source_date_epoch(), release_content: true };
    let layer = ui::step_bytes("write the layer", None, || image::build_layer(&loaded.tree, &loaded.store, out.compression, outs.scratch(out.slot), &wopts))?;
    let n = loaded.image.layers.len();
    let from = loaded.image.manifest_digest.as_ref().map(|d| d.to_string()).unwrap_or_else(|| loaded.image.config_digest.to_string());
    let cfg = config::with_new_layers(
        &loaded.image.config,
        std::slice::from_ref(&layer.diff_id),
        "imgslim squash",
        &format!("squashed {n} layer(s) of {from}"),
    );
    // Same files as the input: the input's tag is kept.
    let (ref_name, repo_tags) = common::output_refs(&loaded.image, &out, "");
    let crate::report::Sizes { uncompressed: before_u, compressed: before_c } = loaded.sizes();
    let (after_u, after_c, diff_id) = (layer.uncompressed_size, layer.size, layer.diff_id.clone());
    let entries = layer.stats.entries;
    let manifest = ui::step("write the image", || {
        image::write_image(image::OutputImage { config: cfg, layers: vec![layer], ref_name, repo_tags }, out.format, &outs.path(out.slot))
    })?;
    ui::step("put the outputs in place", || outs.commit())?;
    if let Some(t) = &push_to {
        ui::step("push", || super::remote::push_output(&super::remote::staging_output(work), t, &a.input))?;
    }
    let (wasted, _) = loaded.wasted();
    if a.json {
        common::print_json(&serde_json::json!({
            "schema": crate::report::SCHEMA,
            "command": "squash",
            "input": a.input.image,
            "output": common::output_json(outs, &out, &manifest),
            "layers_before": n,
            "size_before": {"uncompressed": before_u, "compressed": before_c},
            "size_after": {"uncompressed": after_u, "compressed": after_c},
            "diff_id": diff_id.to_string(),
            "entries": entries,
            "wasted_bytes": wasted,
        }))?;
    }
    ui::info(&format!(
        "squashed {n} layer(s) into 1 ({entries} entries, diff_id {}): uncompressed {} -> {}, compressed {} -> {}; {} of deleted/overwritten content removed\n{} in {:.1}s",
        diff_id.short(),
        human(before_u),
        human(after_u),
        human(before_c),
        human(after_c),
        human(wasted),
        common::wrote(outs, &out, &manifest),
        t0.elapsed().as_secs_f64()
    ));
    Ok(())
}
