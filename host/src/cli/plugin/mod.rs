//! `vestibule plugin …`: what a plugin author runs — `new` to start a plugin
//! (a Rust crate or a TypeScript package), `run` to try a built component
//! on events.

mod new;
mod run;

use std::path::PathBuf;

use crate::config::World;
use crate::secrecy::Secrecy;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Start a plugin, ready to build and test.
    New {
        /// The plugin's name (letters, digits, `-`); also its folder.
        name: String,
        /// Its role: a filter keeps or drops events, an enricher adds to
        /// them, an action sends commands to sinks.
        #[arg(long, value_parser = worlds())]
        world: World,
        /// The language: a Rust crate, a TypeScript package or a Python project.
        #[arg(long, default_value = "rust", value_parser = langs())]
        lang: new::Lang,
        /// Where to create the folder.
        #[arg(long, default_value = ".")]
        path: PathBuf,
        /// The plugin SDK to depend on (its folder: `plugin-sdk`, or
        /// `plugin-sdk/js` for TypeScript, `plugin-sdk/python` for Python).
        /// Default: the one this `vestibule` was built with.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Run a component on one event (`--event`) and print what it did, or on
    /// a folder of events (`--events`) and compare with the expected
    /// outcome beside each.
    Run {
        /// The component (.wasm).
        plugin: PathBuf,
        /// A normalized event as JSON.
        #[arg(long, required_unless_present = "events", conflicts_with = "events")]
        event: Option<PathBuf>,
        /// A folder of `NAME.json` events, each with `NAME.expected.json`.
        #[arg(long)]
        events: Option<PathBuf>,
        /// With `--events`: write the `NAME.expected.json` files from this run.
        #[arg(long, requires = "events")]
        bless: bool,
        /// The plugin's config as a TOML file (its `[plugins.config]` table).
        #[arg(long)]
        config: Option<PathBuf>,
        /// What it may see: 0, 1 (default) or 2, as `secrecy` in the host config.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
        secrecy: u8,
        /// Sinks an action may send to (default: any).
        #[arg(long = "sink")]
        sinks: Vec<String>,
    },
}

/// `--world`: the plugin roles.
fn worlds() -> impl clap::builder::TypedValueParser<Value = World> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["filter", "enricher", "action"]).map(|name| match name.as_str() {
        "filter" => World::Filter,
        "enricher" => World::Enricher,
        _ => World::Action,
    })
}

/// `--lang`: the languages a plugin can be started in.
fn langs() -> impl clap::builder::TypedValueParser<Value = new::Lang> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["rust", "typescript", "python"]).map(|name| match name.as_str() {
        "typescript" => new::Lang::Typescript,
        "python" => new::Lang::Python,
        _ => new::Lang::Rust,
    })
}

pub async fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::New {
            name,
            world,
            lang,
            path,
            sdk,
        } => new::create(&name, world, lang, &path, sdk.as_deref()),
        PluginCommand::Run {
            plugin,
            event,
            events,
            bless,
            config,
            secrecy,
            sinks,
        } => {
            let secrecy = match secrecy {
                0 => Secrecy::Everything,
                1 => Secrecy::NoCredentials,
                _ => Secrecy::NoPeople,
            };
            let options = run::Options {
                plugin,
                config,
                secrecy,
                sinks,
            };
            match (event, events) {
                (Some(event), _) => run::one(&options, &event).await,
                (None, Some(dir)) => run::golden(&options, &dir, bless).await,
                (None, None) => Err(anyhow::anyhow!("give --event FILE or --events DIR")),
            }
        }
    }
}
