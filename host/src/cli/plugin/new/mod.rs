//! `vestibule plugin new NAME --world W [--lang L]`: a plugin that builds
//! with one command, tests natively (`cargo test`, `npm test`), and tries
//! out with `vestibule plugin run` — in Rust ([`rust`]), TypeScript
//! ([`typescript`]) or Python ([`python`]).

mod python;
mod rust;
mod typescript;

use anyhow::Context;
use std::path::{Component, Path, PathBuf};

use crate::config::World;

/// An event to try a new plugin on.
const SAMPLE_EVENT: &str = include_str!("../../../../../examples/events/normalized/front-door-granted.json");

/// The languages a plugin can be started in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Typescript,
    Python,
}

/// What a language's scaffold writes, and how it is built and tested.
pub struct Scaffold {
    /// Files by path in the plugin's folder.
    files: Vec<(&'static str, String)>,
    /// The commands to run in it, each with what it does.
    steps: Vec<(String, &'static str)>,
    /// The component, from the plugin's folder.
    component: String,
}

pub fn create(name: &str, world: World, lang: Lang, parent: &Path, sdk: Option<&Path>) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphabetic());
    if !valid {
        return Err(anyhow::anyhow!(
            "`{name}`: a plugin name starts with a letter and has letters, digits, `-` and `_`"
        ));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(anyhow::anyhow!("{} already exists", dir.display()));
    }
    let built_with = match lang {
        Lang::Rust => rust::BUILT_WITH_SDK,
        Lang::Typescript => typescript::BUILT_WITH_SDK,
        Lang::Python => python::BUILT_WITH_SDK,
    };
    let sdk = sdk.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(built_with));
    let sdk = sdk.canonicalize().map_err(|_| {
        anyhow::anyhow!(
            "the plugin SDK is not at {}; give its folder with --sdk PATH",
            sdk.display()
        )
    })?;
    std::fs::create_dir_all(dir.join("events")).with_context(|| dir.display().to_string())?;
    let dir = dir.canonicalize().with_context(|| dir.display().to_string())?;
    let scaffold = match lang {
        Lang::Rust => rust::scaffold(name, world, &dir, &sdk),
        Lang::Typescript => typescript::scaffold(name, world, &dir, &sdk),
        Lang::Python => python::scaffold(name, world, &dir, &sdk),
    };
    let shared = [
        ("example.toml", example_config(world).to_string()),
        ("events/granted.json", SAMPLE_EVENT.to_string()),
    ];
    for (file, text) in scaffold.files.into_iter().chain(shared) {
        let path = dir.join(file);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).with_context(|| folder.display().to_string())?;
        }
        std::fs::write(&path, text).with_context(|| path.display().to_string())?;
    }
    let shown = parent.join(name);
    println!("Created {world} plugin `{name}` in {}", shown.display());
    println!("  cd {}", shown.display());
    let width = scaffold.steps.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    for (command, what) in &scaffold.steps {
        println!("  {command:width$}   # {what}");
    }
    println!(
        "  vestibule plugin run {} --event events/granted.json --config example.toml",
        scaffold.component
    );
    Ok(())
}

fn example_config(world: World) -> &'static str {
    match world {
        World::Filter => {
            "# [plugins.config] of this plugin in vestibule.toml\nkinds = [\"access.*\", \"door.forced\"]\n"
        }
        World::Enricher => {
            "# [plugins.config] of this plugin in vestibule.toml\n[zones]\n\"Front Door\" = \"public\"\n\"Server Room\" = \"restricted\"\n"
        }
        World::Action => "# [plugins.config] of this plugin in vestibule.toml\nsink = \"chat\"\n",
    }
}

/// `to` as a path from `from`, both absolute.
fn relative(from: &Path, to: &Path) -> String {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for part in &to[common..] {
        path.push(part);
    }
    path.display().to_string()
}
