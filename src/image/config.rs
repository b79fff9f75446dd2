//! Config rewriting on `serde_json::Value`: fields we don't model (Docker's Healthcheck,
//! OnBuild, Shell, vendor keys) survive untouched, and maps serialise in sorted key order.
use crate::digest::Digest;
use serde_json::{json, Value};

/// `SOURCE_DATE_EPOCH` as seconds, if set and valid.
pub fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()
}

/// RFC 3339 UTC timestamp for Unix seconds (proleptic Gregorian, Howard Hinnant's algorithm).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem / 60) % 60, rem % 60)
}

/// The `created` time for a rewritten image: SOURCE_DATE_EPOCH when set, otherwise the
/// original image's own `created`, so the same input always gives the same output.
pub fn created_for(config: &Value) -> Option<String> {
    match source_date_epoch() {
        Some(s) => Some(rfc3339(s)),
        None => config.get("created").and_then(Value::as_str).map(str::to_string),
    }
}

/// Replace the layer list with `diff_ids`: every old history entry is kept but marked
/// `empty_layer` (Docker's own squash does this), and one entry describing the rewrite is
/// appended per new layer.
pub fn with_new_layers(config: &Value, diff_ids: &[Digest], created_by: &str, comment: &str) -> Value {
    let mut c = config.clone();
    if !c.is_object() {
        c = json!({});
    }
    let created = created_for(config);
    let mut history: Vec<Value> = c.get("history").and_then(Value::as_array).cloned().unwrap_or_default();
    for h in history.iter_mut() {
        if let Some(o) = h.as_object_mut() {
            o.insert("empty_layer".into(), Value::Bool(true));
        }
    }
    for _ in diff_ids {
        let mut entry = json!({ "created_by": created_by, "comment": comment });
        if let Some(t) = &created {
            entry["created"] = Value::String(t.clone());
        }
        history.push(entry);
    }
    let Some(obj) = c.as_object_mut() else { return c };
    obj.insert("history".into(), Value::Array(history));
    obj.insert(
        "rootfs".into(),
        json!({ "type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>() }),
    );
    if let Some(t) = created {
        obj.insert("created".into(), Value::String(t));
    }
    c
}

/// Convenience accessors for the runtime config (`config.config`).
pub fn runtime<'a>(config: &'a Value, key: &str) -> Option<&'a Value> {
    config.get("config").and_then(|c| c.get(key)).filter(|v| !v.is_null())
}

pub fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}


/// Set (or with `None`, remove) a key of the runtime config, creating `config` if needed.
pub fn set_runtime(config: &mut Value, key: &str, v: Option<Value>) {
    if !config.is_object() {
        *config = json!({});
    }
    let Some(obj) = config.as_object_mut() else { return };
    let rc = obj.entry("config").or_insert_with(|| json!({}));
    if !rc.is_object() {
        *rc = json!({});
    }
    if let Some(rc) = rc.as_object_mut() {
        match v {
            Some(v) => {
                rc.insert(key.to_string(), v);
            }
            None => {
                rc.remove(key);
            }
        }
    }
}

/// Apply `--env K=V` (replacing K) and `--unset-env K` to the Env list, keeping its order.
pub fn edit_env(config: &mut Value, set: &[(String, String)], unset: &[String]) {
    let mut env = string_list(runtime(config, "Env"));
    env.retain(|e| {
        let k = e.split('=').next().unwrap_or("");
        !unset.iter().any(|u| u == k) && !set.iter().any(|(sk, _)| sk == k)
    });
    for (k, v) in set {
        env.push(format!("{k}={v}"));
    }
    set_runtime(config, "Env", Some(json!(env)));
}

pub fn add_labels(config: &mut Value, labels: &[(String, String)]) {
    let mut l = runtime(config, "Labels").and_then(Value::as_object).cloned().unwrap_or_default();
    for (k, v) in labels {
        l.insert(k.clone(), Value::String(v.clone()));
    }
    set_runtime(config, "Labels", Some(Value::Object(l)));
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1700000000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951782400), "2000-02-29T00:00:00Z");
    }
    #[test]
    fn keeps_unknown_fields_and_marks_history_empty() {
        let c = json!({"architecture":"amd64","os":"linux","config":{"Healthcheck":{"Test":["CMD","true"]}},
            "history":[{"created_by":"a"},{"created_by":"b","empty_layer":true}],"rootfs":{"type":"layers","diff_ids":[]}});
        let d = Digest::of_bytes(b"x");
        let n = with_new_layers(&c, std::slice::from_ref(&d), "imgslim squash", "c");
        assert_eq!(n["config"]["Healthcheck"]["Test"][1], "true");
        assert_eq!(n["history"].as_array().unwrap().len(), 3);
        assert_eq!(n["history"][0]["empty_layer"], true);
        assert!(n["history"][2].get("empty_layer").is_none());
        assert_eq!(n["rootfs"]["diff_ids"][0], d.to_string());
    }
}
