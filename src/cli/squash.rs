use super::common::{self, human, InputArgs, OutputArgs};
use super::remote;
use super::CmdResult;
use crate::image::{self, config};
use crate::layer::WriteOptions;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct SquashArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(a: &SquashArgs) -> CmdResult {
    let t0 = Instant::now();
    let work = common::work_area()?;
    let loaded = common::load(&a.input, work.path())?;
    let (mut format, compression) = a.output.resolve(&loaded.image)?;
    let push_to = remote::push_target(&a.output.output);
    let out = match &push_to {
        Some(_) => {
            format = image::Format::Oci;
            remote::staging_output(work.path())
        }
        None => a.output.output.clone(),
    };
    let wopts = WriteOptions { clamp_mtime: config::source_date_epoch() };
    let layer = image::build_layer(&loaded.tree, &loaded.store, compression, &out, &wopts)?;
    let n = loaded.image.layers.len();
    let from = loaded.image.manifest_digest.as_ref().map(|d| d.to_string()).unwrap_or_else(|| loaded.image.config_digest.to_string());
    let cfg = config::with_new_layers(
        &loaded.image.config,
        std::slice::from_ref(&layer.diff_id),
        "imgslim squash",
        &format!("squashed {n} layer(s) of {from}"),
    );
    let (ref_name, repo_tags) = common::output_refs(&loaded.image, a.output.tag.as_deref());
    let before_u: u64 = loaded.layer_stats.iter().map(|s| s.uncompressed).sum();
    let before_c: u64 = loaded.layer_stats.iter().map(|s| s.compressed).sum();
    let (after_u, after_c, diff_id) = (layer.uncompressed_size, layer.size, layer.diff_id.clone());
    let entries = layer.stats.entries;
    image::write_image(image::OutputImage { config: cfg, layers: vec![layer], ref_name, repo_tags }, format, &out)?;
    if let Some(t) = &push_to {
        remote::push_output(&out, t, &a.input)?;
    }
    let (wasted, _) = loaded.wasted();
    eprintln!(
        "squashed {n} layer(s) into 1 ({entries} entries, diff_id {}): uncompressed {} -> {}, compressed {} -> {}; {} of deleted/overwritten content removed; wrote {} in {:.1}s",
        diff_id.short(),
        human(before_u),
        human(after_u),
        human(before_c),
        human(after_c),
        human(wasted),
        a.output.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
