//! The reference plugins in `plugins/`: each component, built for
//! wasm32-wasip2, does with its sample events exactly what the
//! `events/NAME.expected.json` beside each says — run as a plugin author
//! would, with `vestibule plugin run --events` — and each README shows the
//! plugin's example config.

use std::path::{Path, PathBuf};

use crate::support::{golden, plugin};

const REFERENCE: &[&str] = &[
    "door-filter",
    "lights-on-unlock",
    "after-hours",
    "directory",
    "elevator-call",
    "doorbell-notify",
    "forced-door-alarm",
];

fn folder(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins").join(name)
}

#[test]
fn every_reference_plugin_does_what_its_events_expect() {
    for name in REFERENCE {
        let dir = folder(name);
        let events = golden(&plugin(name), &dir.join("events"), &dir.join("example.toml"));
        assert!(events >= 2, "{name}: at least a case that acts and one that does not");
    }
}

#[test]
fn every_readme_shows_the_example_config() {
    for name in REFERENCE {
        let dir = folder(name);
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap_or_else(|_| panic!("{name} has no README"));
        let snippet = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .unwrap_or_else(|| panic!("{name}: no TOML in the README"));
        let shown: toml::Table = toml::from_str(snippet).unwrap_or_else(|e| panic!("{name}: {e}"));
        let example: toml::Table = toml::from_str(&std::fs::read_to_string(dir.join("example.toml")).unwrap()).unwrap();
        let plugin = &shown["plugins"].as_array().unwrap()[0];
        assert_eq!(plugin["name"].as_str(), Some(*name));
        assert_eq!(
            plugin["config"].as_table(),
            Some(&example),
            "{name}: the README's config is not example.toml"
        );
    }
}
