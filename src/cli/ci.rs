//! `inspect --ci`: dive's `.dive-ci` rules with a correct efficiency; one verdict line per rule
//! on stdout, exit 1 when any rule fails.
use super::common::{self, InputArgs};
use super::CmdResult;
use crate::error::Error;
use crate::report::ci::{self, Efficiency};
use crate::report::human;
use std::path::Path;

#[derive(clap::Args, Debug, Default)]
pub struct CiArgs {
    /// Check the image against the CI rules; exit 1 when one fails.
    #[arg(long)]
    pub ci: bool,
    /// Fail when efficiency (1 - wasted/total layer bytes) is below this (0-1; default 0.9, or `off`).
    #[arg(long, value_name = "RATIO")]
    pub lowest_efficiency: Option<String>,
    /// Fail when wasted bytes exceed this (`20MB`, `5MiB`; default off).
    #[arg(long, value_name = "SIZE")]
    pub highest_wasted_bytes: Option<String>,
    /// Fail when wasted bytes of layers after the first exceed this share of their bytes (0-1; default 0.1).
    #[arg(long, value_name = "RATIO")]
    pub highest_user_wasted_percent: Option<String>,
    /// Rules file (default: `.imgslim-ci.toml`, else `.dive-ci`, in the current directory, when present).
    #[arg(long, value_name = "FILE")]
    pub ci_config: Option<std::path::PathBuf>,
}

const RULES: [&str; 3] = ["lowest-efficiency", "highest-wasted-bytes", "highest-user-wasted-percent"];

pub fn run(input: &InputArgs, a: &CiArgs) -> CmdResult {
    let mut rules = defaults();
    read_rules_file(a.ci_config.as_deref(), &mut rules)?;
    let flags = [&a.lowest_efficiency, &a.highest_wasted_bytes, &a.highest_user_wasted_percent];
    for (name, v) in RULES.iter().zip(flags) {
        if let Some(v) = v {
            rules.insert(name.to_string(), v.clone());
        }
    }
    let work = common::work_area()?;
    let l = common::open(input, work.path()).and_then(|img| common::load_with_layers(img, work.path()))?;
    let ours = ci::ours(&l.changesets, &l.apply_stats);
    let dive = ci::dive(&l.changesets);
    let mut failed = 0;
    for name in RULES {
        let line = verdict(name, &rules[name], &ours, &dive)?;
        failed += usize::from(line.starts_with("FAIL"));
        println!("{line}");
    }
    if failed > 0 {
        return Err(Error::Other(format!("{}: {failed} of {} CI rules failed", input.image, RULES.len())));
    }
    Ok(())
}

fn defaults() -> std::collections::BTreeMap<String, String> {
    [("lowest-efficiency", "0.9"), ("highest-wasted-bytes", "off"), ("highest-user-wasted-percent", "0.1")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `.imgslim-ci.toml` (`[rules]` with kebab-case keys) or dive's `.dive-ci` (`rules:` with
/// camelCase keys; only that flat `key: value` form is read).
fn read_rules_file(explicit: Option<&Path>, rules: &mut std::collections::BTreeMap<String, String>) -> CmdResult {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match [".imgslim-ci.toml", ".dive-ci"].iter().map(Path::new).find(|p| p.exists()) {
            Some(p) => p.to_path_buf(),
            None => return Ok(()),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    let bad = |m: String| Error::Usage(format!("{}: {m}", path.display()));
    if path.extension().is_some_and(|e| e == "toml") {
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
        for (k, v) in doc.get("rules").and_then(|r| r.as_table()).into_iter().flatten() {
            let v = v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
            rules.insert(known(k).ok_or_else(|| bad(format!("unknown rule {k}")))?, v);
        }
        return Ok(());
    }
    for line in text.lines().filter(|l| l.starts_with([' ', '\t'])) {
        if let Some((k, v)) = line.split_once(':') {
            let v = v.split(" #").next().unwrap_or("").trim().trim_matches(['"', '\'']);
            rules.insert(known(k.trim()).ok_or_else(|| bad(format!("unknown rule {}", k.trim())))?, v.to_string());
        }
    }
    Ok(())
}

/// The kebab-case name of a rule given in either spelling.
fn known(key: &str) -> Option<String> {
    let kebab: String = key.chars().flat_map(|c| if c.is_ascii_uppercase() { vec!['-', c.to_ascii_lowercase()] } else { vec![c] }).collect();
    RULES.contains(&kebab.as_str()).then_some(kebab)
}

fn disabled(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "" | "off" | "disabled" | "false")
}

fn ratio(name: &str, v: &str) -> Result<f64, Error> {
    v.trim().parse::<f64>().ok().filter(|x| (0.0..=1.0).contains(x)).ok_or_else(|| Error::Usage(format!("{name}: '{v}' is not a ratio between 0 and 1")))
}

/// `20MB` (SI), `5MiB` (binary), `123` (bytes).
pub(crate) fn bytes(name: &str, v: &str) -> Result<u64, Error> {
    let v = v.trim();
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1048576.0,
        "gib" => 1073741824.0,
        _ => return Err(Error::Usage(format!("{name}: '{v}' is not a size (like 20MB or 5MiB)"))),
    };
    num.parse::<f64>().map(|n| (n * mult) as u64).map_err(|_| Error::Usage(format!("{name}: '{v}' is not a size")))
}

fn verdict(name: &str, v: &str, ours: &Efficiency, dive: &Efficiency) -> Result<String, Error> {
    if disabled(v) {
        return Ok(format!("SKIP {name}: disabled"));
    }
    let (pass, detail) = match name {
        "lowest-efficiency" => {
            let t = ratio(name, v)?;
            (ours.efficiency >= t, format!("efficiency {:.4} (threshold {t}; dive would say {:.4})", ours.efficiency, dive.efficiency))
        }
        "highest-wasted-bytes" => {
            let t = bytes(name, v)?;
            (ours.wasted_bytes <= t, format!("wasted {} (threshold {}; dive would say {})", human(ours.wasted_bytes), human(t), human(dive.wasted_bytes)))
        }
        _ => {
            let t = ratio(name, v)?;
            let p = ours.user_wasted_percent;
            // Dive divides by the bytes of layers 2..n without a zero check.
            let d = if dive.user_wasted_percent.is_nan() { "NaN: one layer".to_string() } else { format!("{:.4}", dive.user_wasted_percent) };
            (p <= t, format!("user wasted {p:.4} (threshold {t}; dive would say {d})"))
        }
    };
    Ok(format!("{} {name}: {detail}", if pass { "PASS" } else { "FAIL" }))
}
