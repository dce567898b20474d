//! The last `connect` check per source, kept in a small JSON file beside
//! the journal (or the config, without one) so that a running host's
//! `/admin/status` can show it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::config::Config;

/// Where the last checks are kept.
pub fn file(config: &Config) -> PathBuf {
    match &config.store.path {
        Some(folder) => config.resolve(folder).join("connect-check.json"),
        None => config.base_dir.join("connect-check.json"),
    }
}

/// Every source's last check, by source name.
pub fn last(config: &Config) -> BTreeMap<String, Value> {
    crate::files::read(&file(config), crate::files::CONFIG_LIMIT)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Record `source`'s check now: in sync without `problems`.
pub fn record(config: &Config, source: &str, problems: &[String], subscription: Option<&str>) -> Result<(), String> {
    let mut all = last(config);
    all.insert(
        source.to_string(),
        json!({
            "checked_at": crate::time::format_iso8601(crate::time::now_ms() / 1000),
            "in_sync": problems.is_empty(),
            "problems": problems,
            "subscription": subscription,
        }),
    );
    let path = file(config);
    let temporary = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(&all).unwrap_or_default();
    std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")))
        .and_then(|()| std::fs::write(&temporary, text))
        .and_then(|()| std::fs::rename(&temporary, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
