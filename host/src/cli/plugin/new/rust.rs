//! A plugin crate: builds with one `cargo build --target wasm32-wasip2
//! --release`, tests natively with `cargo test`.

use std::path::{Path, PathBuf};

use super::{Scaffold, relative};
use crate::config::World;

/// The Rust SDK this `vestibule` was built with.
pub const BUILT_WITH_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugin-sdk");

/// The crate's files, and what to run in it.
pub fn scaffold(name: &str, world: World, dir: &Path, sdk: &Path) -> Scaffold {
    let workspace = enclosing_workspace(dir).filter(|(root, members)| is_member(root, members, dir));
    let member = workspace.is_some();
    // A workspace member is built into the workspace's target folder.
    let target = match (&workspace, std::env::var_os("CARGO_TARGET_DIR")) {
        (Some(_), Some(target)) => relative(dir, &std::path::absolute(target).unwrap_or_default()),
        (Some((root, _)), None) => relative(dir, &root.join("target")),
        (None, _) => "target".to_string(),
    };
    let crate_name = name.replace('-', "_");
    let component = format!("{target}/wasm32-wasip2/release/{crate_name}.wasm");
    Scaffold {
        files: vec![
            ("Cargo.toml", cargo_toml(name, &relative(dir, sdk), member)),
            ("src/lib.rs", source(name, world)),
            (".gitignore", "/target\n".to_string()),
            ("README.md", readme(name, world, &component)),
        ],
        steps: vec![
            ("cargo test".into(), "its tests, natively"),
            ("cargo build --target wasm32-wasip2 --release".into(), "the component"),
        ],
        component,
    }
}

/// The workspace `dir` is inside, if any: its root and its `members`.
fn enclosing_workspace(dir: &Path) -> Option<(PathBuf, Vec<String>)> {
    dir.ancestors().skip(1).find_map(|folder| {
        let text = std::fs::read_to_string(folder.join("Cargo.toml")).ok()?;
        let manifest: toml::Table = toml::from_str(&text).ok()?;
        let workspace = manifest.get("workspace")?.as_table()?;
        let members = workspace
            .get("members")
            .and_then(|m| m.as_array())
            .map(|m| m.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        Some((folder.to_path_buf(), members))
    })
}

/// Whether a `members` entry (a path, or a folder ending in `/*`) takes `dir`.
fn is_member(root: &Path, members: &[String], dir: &Path) -> bool {
    let Ok(relative) = dir.strip_prefix(root) else {
        return false;
    };
    members.iter().any(|member| match member.strip_suffix("/*") {
        Some(folder) => relative.parent() == Some(Path::new(folder)),
        None => relative == Path::new(member),
    })
}

fn cargo_toml(name: &str, sdk: &str, member: bool) -> String {
    let workspace = if member {
        ""
    } else {
        "\n# A workspace of its own; remove this if you add the plugin to yours.\n[workspace]\n"
    };
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the component; rlib: native `cargo test`.
crate-type = ["cdylib", "rlib"]

[dependencies]
# The published SDK this host was built with; the path is where it is on
# this machine, used instead while it is there (and offline).
vestibule-plugin-sdk = {{ version = "{version}", path = "{sdk}" }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"
{workspace}"#,
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// The README; `component` is where the component is built, from the crate.
fn readme(name: &str, world: World, component: &str) -> String {
    format!(
        "# {name}\n\nA Vestibule {world} plugin.\n\n```sh\ncargo test                                     # its logic, natively\n\
         cargo build --target wasm32-wasip2 --release   # {component}\n\
         vestibule plugin run {component} --event events/granted.json --config example.toml\n```\n\n\
         In `vestibule.toml` (the path from the config file's folder):\n\n```toml\n[[plugins]]\nname = \"{name}\"\nworld = \"{world}\"\npath = \"{component}\"\n\
         [plugins.config]\n# as in example.toml\n```\n"
    )
}

fn source(name: &str, world: World) -> String {
    let text = match world {
        World::Filter => FILTER,
        World::Enricher => ENRICHER,
        World::Action => ACTION,
    };
    text.replace("{name}", name)
}

const FILTER: &str = r##"//! {name}: keeps the events of the kinds its config lists, drops the rest.

use serde::Deserialize;
use vestibule_plugin_sdk::{Error, Event, Filter, Verdict, export};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Normalized kinds (`"door.forced"`) or families (`"access.*"`).
    kinds: Vec<String>,
}

struct Plugin;

impl Filter for Plugin {
    type Config = Config;

    fn filter(event: Event, config: &Config) -> Result<Verdict, Error> {
        if config.kinds.iter().any(|kind| event.is(kind)) {
            Ok(Verdict::Keep)
        } else {
            Ok(Verdict::Drop(format!("{} is not a kind this plugin keeps", event.kind)))
        }
    }
}

export!(filter: Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use vestibule_plugin_sdk::kind;
    use vestibule_plugin_sdk::testing::FakeHost;

    #[test]
    fn keeps_the_kinds_it_lists() {
        let host = FakeHost::new().config(r#"kinds = ["access.*"]"#);
        let granted = Event::builder().kind(kind::ACCESS_GRANTED).build();
        assert_eq!(host.filter::<Plugin>(granted).result, Ok(Verdict::Keep));
        let ring = Event::builder().kind(kind::DOORBELL_RING).build();
        assert!(matches!(host.filter::<Plugin>(ring).result, Ok(Verdict::Drop(_))));
    }
}
"##;

const ENRICHER: &str = r##"//! {name}: adds the door's `zone`, from its config, to every event.

use std::collections::BTreeMap;

use serde::Deserialize;
use vestibule_plugin_sdk::{Enricher, Error, Event, export};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Door name -> zone.
    zones: BTreeMap<String, String>,
}

struct Plugin;

impl Enricher for Plugin {
    type Config = Config;

    fn enrich(mut event: Event, config: &Config) -> Result<Event, Error> {
        let zone = event.door_name().and_then(|door| config.zones.get(door)).cloned();
        if let Some(zone) = zone {
            event.set_attribute("zone", zone);
        }
        Ok(event)
    }
}

export!(enricher: Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use vestibule_plugin_sdk::testing::FakeHost;

    #[test]
    fn adds_the_zone_of_the_door() {
        let host = FakeHost::new().config("[zones]\n\"Lobby\" = \"public\"");
        let event = Event::builder().door("Lobby").build();
        let enriched = host.enrich::<Plugin>(event).result.unwrap();
        assert_eq!(enriched.attribute("zone"), Some("public"));
    }
}
"##;

const ACTION: &str = r##"//! {name}: tells a chat sink who was let in where.

use serde::Deserialize;
use vestibule_plugin_sdk::{Action, Command, Error, Event, export, kind, log};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The sink to post to, as named in the host's `[[sinks]]`.
    sink: String,
}

struct Plugin;

impl Action for Plugin {
    type Config = Config;

    fn act(event: Event, config: &Config) -> Result<(), Error> {
        if !event.is(kind::ACCESS_GRANTED) {
            return Ok(());
        }
        let door = event.door_name().unwrap_or("a door");
        let who = event.actor_name().unwrap_or("someone");
        let text = format!("{who} came in at {door}");
        Command::json(&config.sink, &serde_json::json!({ "text": text })).send()?;
        log::info("Announced.", &[("door", door)]);
        Ok(())
    }
}

export!(action: Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use vestibule_plugin_sdk::testing::FakeHost;

    #[test]
    fn announces_who_came_in() {
        let host = FakeHost::new().config(r#"sink = "chat""#);
        let event = Event::builder().kind(kind::ACCESS_GRANTED).door("Lobby").actor("u1", "Ada").build();
        let run = host.act::<Plugin>(event);
        assert_eq!(run.result, Ok(()));
        assert_eq!(run.commands[0].sink, "chat");
        assert_eq!(run.commands[0].body, r#"{"text":"Ada came in at Lobby"}"#);
    }
}
"##;
