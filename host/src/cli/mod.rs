//! The command line: `vestibule serve`, `check`, `send`, `plugin`,
//! `events`, `dead-letters`, `replay`. What a user types, on top of the
//! modules an event goes through.

pub mod journal;
mod log;
pub mod plugin;
pub mod send;

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::App;
use crate::config::{Config, ConfigError, VendorKind};
use crate::live::Generation;
use crate::plugins::Runtime;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vestibule",
    version,
    about = "Receive, verify and act on building access-control events."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the host.
    Serve {
        /// The host's config file (TOML), e.g. examples/quickstart.toml.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate the config, read every secret and load every plugin.
    Check {
        /// The host's config file (TOML), e.g. examples/quickstart.toml.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Sign a sample event as the vendor would and post it.
    Send {
        /// The vendor whose way of signing and shaping events to use.
        #[arg(long, value_parser = vendors())]
        vendor: VendorKind,
        /// The sample's vendor event type (e.g. `access.door.unlock`).
        #[arg(long, conflicts_with = "body")]
        event: Option<String>,
        /// Send this file's contents instead of a sample.
        #[arg(long)]
        body: Option<PathBuf>,
        /// The URL of the source, e.g. http://127.0.0.1:8080/ingest/office
        #[arg(long)]
        to: String,
        /// The signing secret (vendors that sign).
        #[arg(long, env = "VESTIBULE_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// `user:password` for HTTP Basic (Unloc, ProdataKey).
        #[arg(long, env = "VESTIBULE_BASIC", hide_env_values = true)]
        basic: Option<String>,
        /// Rename the sample's door.
        #[arg(long)]
        door: Option<String>,
    },
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// Look at the journal: recent events and what each plugin did.
    Events {
        #[command(subcommand)]
        command: journal::EventsCommand,
    },
    /// Commands that could not be delivered: list, retry, drop.
    DeadLetters {
        #[command(subcommand)]
        command: journal::DeadLettersCommand,
    },
    /// Register each source's webhook subscription at its vendor, keep its
    /// secret in the source's secret file, and find drift.
    Connect {
        /// The host's config file (TOML): sources with a [sources.connect] table.
        #[arg(long, short)]
        config: PathBuf,
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Print the plan; change nothing.
        #[arg(long, conflicts_with_all = ["check", "remove", "rotate"])]
        dry_run: bool,
        /// Report drift with a non-zero exit; change nothing.
        #[arg(long, conflicts_with_all = ["remove", "rotate"])]
        check: bool,
        /// Delete our subscriptions at the vendor.
        #[arg(long, conflicts_with = "rotate")]
        remove: bool,
        /// A new secret; the old one is accepted for --grace, then dropped.
        #[arg(long)]
        rotate: bool,
        /// How long both secrets are accepted during --rotate.
        #[arg(long, default_value = "5m", requires = "rotate")]
        grace: String,
    },
    /// Run stored events through the running host's pipeline again.
    Replay {
        /// The host's config file (TOML): its [store] path is the journal replayed.
        #[arg(long, short)]
        config: PathBuf,
        /// From this time (`2026-11-22T08:00:00Z`) or this long ago (`2h`).
        #[arg(long)]
        since: String,
        /// Only this source's events.
        #[arg(long)]
        source: Option<String>,
    },
}

/// `--vendor`: one of the vendors, listed from the vendor list itself.
fn vendors() -> impl clap::builder::TypedValueParser<Value = VendorKind> {
    use clap::builder::TypedValueParser;
    let names: Vec<&'static str> = VendorKind::ALL.iter().map(|v| v.as_str()).collect();
    clap::builder::PossibleValuesParser::new(names).map(|name| name.parse().expect("listed vendors parse"))
}

/// Run the command line; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // `plugin run` prints the plugin's log lines itself.
    let default_filter = match cli.command {
        Command::Plugin { .. } => "warn,vestibule::plugin=off,vestibule::pipeline=off",
        _ => "info,wasmtime=warn,cranelift=warn,async_nats=warn",
    };
    log::init(default_filter);
    let runtime = tokio::runtime::Runtime::new().expect("starting the async runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => serve(&config).await,
            Command::Check { config } => check(&config).await,
            Command::Send {
                vendor,
                event,
                body,
                to,
                secret,
                basic,
                door,
            } => send_event(vendor, event, body, door, &to, secret.as_deref(), basic.as_deref()).await,
            Command::Plugin { command } => plugin::run(command).await,
            Command::Events { command } => journal::events(command),
            Command::DeadLetters { command } => journal::dead_letters(command),
            Command::Connect {
                config,
                source,
                dry_run,
                check,
                remove,
                rotate,
                grace,
            } => {
                let job = if check {
                    crate::connect::Job::Check
                } else if remove {
                    crate::connect::Job::Remove
                } else if rotate {
                    let grace = grace
                        .parse::<crate::settings::Duration>()
                        .map_err(|e| anyhow::anyhow!("--grace: {e}"))?;
                    crate::connect::Job::Rotate { grace: grace.0 }
                } else {
                    crate::connect::Job::Apply { dry_run }
                };
                connect(&config, source.as_deref(), job).await
            }
            Command::Replay { config, since, source } => journal::replay(&config, &since, source.as_deref()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Each cause once (see `error_chain`): `path: cause`.
            eprintln!("error: {}", crate::error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn build(config: Config) -> anyhow::Result<App> {
    let runtime = Runtime::new().map_err(|e| anyhow::anyhow!("starting the plugin runtime: {e:#}"))?;
    App::build(config, &runtime).await.map_err(shown)
}

/// A config error as the command line prints it: several on a line each.
fn shown(error: ConfigError) -> anyhow::Error {
    let lines: Vec<String> = error.each().iter().map(ToString::to_string).collect();
    anyhow::Error::msg(lines.join("\nerror: "))
}

async fn serve(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path).map_err(shown)?;
    log::use_format(config.log.format);
    let app = build(config).await?;
    let live = app.live().current();
    let config = &live.config;
    let listener = crate::ingest::listener::bind(config).await.map_err(shown)?;
    let addr = listener.local_addr()?;
    for source in &config.sources {
        if let crate::vendors::Settings::UnifiAccessWs(settings) = &source.settings {
            let url = &settings.url;
            tracing::info!(source = %source.name, vendor = %source.vendor, %url, "Source ready: dialling the controller.");
        } else {
            let scheme = if config.server.tls.is_some() { "https" } else { "http" };
            tracing::info!(source = %source.name, vendor = %source.vendor, url = %format!("{scheme}://{addr}{}", source.path()), "Source ready.");
        }
    }
    for plugin in live.pipeline.plugins() {
        let compiled = &plugin.compiled;
        tracing::info!(plugin = %plugin.name, world = %plugin.world, sha256 = %compiled.sha256, from = %compiled.origin, "Plugin loaded.");
    }
    match (&config.store.path, config.store.kind) {
        (_, crate::config::StoreKind::Nats) => {
            let servers = config.store.servers.join(", ");
            let prefix = &config.store.stream_prefix;
            tracing::info!(%servers, streams = %format!("{prefix}_*"), replicas = config.store.replicas, "Journal in NATS JetStream.");
        }
        (Some(path), _) => tracing::info!(path = %config.resolve(path).display(), "Journal on disk."),
        (None, _) => tracing::warn!("No [store] path: the journal is in memory, and a crash loses what it holds."),
    }
    if config.reload.watch {
        tracing::info!(file = %config.file.display(), "Watching the config and plugin files; a change reloads them.");
    }
    drop(live);
    tokio::spawn(reload_on_sighup(app.reloader()));
    tracing::info!(%addr, "Listening.");
    app.run(listener, shutdown_signal()).await.map_err(anyhow::Error::from)
}

/// SIGHUP reloads the config and plugin files, as daemons do.
async fn reload_on_sighup(reloader: std::sync::Arc<crate::reload::Reloader>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("Cannot listen for SIGHUP; reload with POST /admin/reload.");
            return;
        };
        while hangups.recv().await.is_some() {
            reloader.reload(crate::reload::Trigger::Signal).await;
        }
    }
    #[cfg(not(unix))]
    let _ = reloader;
}

/// Everything `serve` would build, without opening the journal (a host may
/// be running on it), and every problem found, not only the first.
async fn check(path: &Path) -> anyhow::Result<()> {
    let (config, mut errors) = Config::load_all(path);
    let runtime = Runtime::new().map_err(|e| anyhow::anyhow!("starting the plugin runtime: {e:#}"))?;
    let built = config.and_then(|config| {
        if let Some(dir) = &config.store.path
            && let Err(e) = crate::store::check_data_folder(&config.resolve(dir))
        {
            errors.push(config.error("store.path", e.to_string()));
        }
        let compiled = crate::app::compiled_dir(&config);
        Generation::build(config, &runtime, compiled.as_deref(), None)
            .map_err(|e| errors.extend(e.into_each()))
            .ok()
    });
    let generation = match built {
        Some(generation) if errors.is_empty() => generation,
        _ => return Err(shown(ConfigError::several(errors))),
    };
    let config = &generation.config;
    // The cluster is asked last: the file itself is fine by now.
    let cluster = match config.store.kind {
        crate::config::StoreKind::Sqlite => None,
        crate::config::StoreKind::Nats => {
            let checked = async {
                let cluster = crate::store::nats::Cluster::connect(config).await?;
                cluster.connected(std::time::Duration::from_secs(5)).await?;
                cluster.check().await
            };
            let lines = tokio::time::timeout(std::time::Duration::from_secs(15), checked)
                .await
                .map_err(|_| crate::store::StoreError::Cluster("no answer from the servers within 15s".into()))
                .and_then(|r| r)
                .map_err(|e| shown(config.error("store.servers", e.to_string())))?;
            Some(lines)
        }
    };
    println!("{}: ok", path.display());
    println!("  {} source(s), {} sink(s)", config.sources.len(), config.sinks.len());
    match (&config.store.path, cluster) {
        (_, Some(lines)) => {
            println!(
                "  journal in NATS JetStream ({}), streams {}_*",
                config.store.servers.join(", "),
                config.store.stream_prefix
            );
            for line in lines {
                println!("    {line}");
            }
        }
        (Some(path), None) => println!("  journal in {}", config.resolve(path).display()),
        (None, None) => println!("  journal in memory (no [store] path: a crash loses accepted events)"),
    }
    let checks = crate::connect::status::last(config);
    for source in config.sources.iter().filter(|s| s.connect.is_some()) {
        match checks.get(&source.name) {
            None => println!("  source {}: not connected yet (`vestibule connect`)", source.name),
            Some(check) => {
                let at = check["checked_at"].as_str().unwrap_or("?");
                let problems: Vec<&str> = check["problems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str())
                    .collect();
                if problems.is_empty() {
                    println!("  source {}: in sync at the vendor, as checked at {at}", source.name);
                } else {
                    println!(
                        "  source {}: drift at the vendor, as checked at {at}: {}",
                        source.name,
                        problems.join("; ")
                    );
                }
            }
        }
    }
    for plugin in generation.pipeline.plugins() {
        let compiled = &plugin.compiled;
        println!(
            "  plugin {} ({}) sha256 {}: {}",
            plugin.name,
            plugin.world,
            &compiled.sha256[..12],
            compiled.origin
        );
    }
    Ok(())
}

/// `vestibule connect`: with `--check`, drift is an error (exit 1), for cron
/// and monitoring.
async fn connect(path: &Path, source: Option<&str>, job: crate::connect::Job) -> anyhow::Result<()> {
    let config = Config::load(path).map_err(shown)?;
    let reports = crate::connect::run(&config, source, job).await?;
    let drifted: Vec<&str> = reports
        .iter()
        .filter(|(_, report)| !report.problems.is_empty())
        .map(|(name, _)| name.as_str())
        .collect();
    if drifted.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!("drift found in {}", drifted.join(", ")))
    }
}

async fn send_event(
    vendor: VendorKind,
    event: Option<String>,
    body: Option<PathBuf>,
    door: Option<String>,
    to: &str,
    secret: Option<&str>,
    basic: Option<&str>,
) -> anyhow::Result<()> {
    if vendor.dials_out() {
        return Err(anyhow::anyhow!(
            "{vendor} sources are dialled by the host; post webhooks with --vendor unifi-access"
        ));
    }
    let mut body = match (event, body) {
        (_, Some(file)) => {
            crate::files::read_text(&file, crate::files::INPUT_LIMIT).with_context(|| file.display().to_string())?
        }
        (Some(event), None) => send::sample(vendor, &event)?.to_string(),
        (None, None) => return Err(anyhow::anyhow!("give --event TYPE (a sample) or --body FILE")),
    };
    if let Some(door) = door {
        body = send::with_door(&body, &door)?;
    }
    if secret.is_none() && basic.is_none() {
        return Err(anyhow::anyhow!("{vendor} needs --secret S or --basic user:password"));
    }
    let signed = send::sign(vendor, secret, basic, body.into_bytes());
    let (status, answer) = send::post(to, &signed).await?;
    println!("{status} {answer}");
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(anyhow::anyhow!("the host answered {status}"))
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
