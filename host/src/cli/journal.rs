//! `vestibule events`, `vestibule dead-letters` and `vestibule replay`: the
//! journal seen from the command line. They open the data folder the config
//! names, beside a running host if there is one.

use std::path::Path;

use crate::config::{Config, Duration};
use crate::store::{self, CommandRow, EventRow, Records};
use crate::time::now_ms;
use crate::time::{format_iso8601, parse_iso8601};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Recent events, newest first, with what each plugin did.
    List {
        /// The host's config file (TOML): its [store] path is the journal read.
        #[arg(long, short)]
        config: std::path::PathBuf,
        /// Only this source's.
        #[arg(long)]
        source: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One event (by event id or journal number): the normalized event,
    /// every run of it, and its commands.
    Show {
        id: String,
        /// The host's config file (TOML): its [store] path is the journal read.
        #[arg(long, short)]
        config: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
pub enum DeadLettersCommand {
    /// Commands that were given up on, and events a plugin stopped.
    List {
        /// The host's config file (TOML): its [store] path is the journal read.
        #[arg(long, short)]
        config: std::path::PathBuf,
    },
    /// Put dead commands back in the outbox, and stopped events back in the
    /// journal; the running host delivers and processes them.
    Retry {
        #[command(flatten)]
        which: Which,
        /// The host's config file (TOML): its [store] path is the journal read.
        #[arg(long, short)]
        config: std::path::PathBuf,
    },
    /// Forget dead letters.
    Drop {
        #[command(flatten)]
        which: Which,
        /// The host's config file (TOML): its [store] path is the journal read.
        #[arg(long, short)]
        config: std::path::PathBuf,
    },
}

/// Which dead letters: commands by id, events by journal number, or all.
#[derive(clap::Args)]
#[group(required = true, multiple = true)]
pub struct Which {
    /// Dead command ids (the ID column of `list`).
    #[arg(conflicts_with = "all")]
    ids: Vec<i64>,
    /// Stopped events, by journal number (the SEQ column of `list`).
    #[arg(long = "event", value_name = "SEQ", conflicts_with = "all")]
    events: Vec<i64>,
    /// Every dead command and every stopped event.
    #[arg(long)]
    all: bool,
}

/// The store of the config at `path`; an error if it keeps none on disk.
fn open(path: &Path) -> anyhow::Result<Box<dyn Records>> {
    let config = Config::load(path)?;
    if config.store.kind == crate::config::StoreKind::Sqlite && config.store.path.is_none() {
        return Err(anyhow::anyhow!(
            "{}: store.path: not set, so the host keeps its journal in memory and there is nothing to read; \
             add [store] path = \"data\"",
            path.display()
        ));
    }
    store::records(&config).map_err(anyhow::Error::from)
}

pub fn events(command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::List { config, source, limit } => {
            let rows = open(&config)?.events(source.as_deref(), limit)?;
            table(
                "no events",
                &[
                    ("SEQ", 6),
                    ("RECEIVED", 20),
                    ("SOURCE", 12),
                    ("KIND", 18),
                    ("DOOR", 16),
                    ("STATE", 7),
                    ("OUTCOME", 0),
                ],
                rows.iter().map(|row| {
                    vec![
                        row.seq.to_string(),
                        time(row.received_at),
                        row.source.clone(),
                        row.kind.clone(),
                        row.door.clone(),
                        run_state(row),
                        steps(row),
                    ]
                }),
            );
            Ok(())
        }
        EventsCommand::Show { id, config } => {
            let runs = open(&config)?.event(&id)?;
            for (i, (row, json, commands)) in runs.iter().enumerate() {
                if i == 0 {
                    let pretty = serde_json::from_str::<serde_json::Value>(json)
                        .and_then(|v| serde_json::to_string_pretty(&v))
                        .unwrap_or_else(|_| json.clone());
                    println!("{pretty}");
                }
                println!();
                println!(
                    "run {} (journal #{}), received {}, {}",
                    row.run,
                    row.seq,
                    time(row.received_at),
                    run_state(row)
                );
                for step in &row.steps {
                    println!("  {}: {}", step.plugin, step.result);
                }
                for command in commands {
                    println!(
                        "  command #{} to {}: {}",
                        command.id,
                        command.sink,
                        command_state(command)
                    );
                    println!("    idempotency key {}", command.idempotency_key);
                    println!("    body {}", command.body);
                }
            }
            Ok(())
        }
    }
}

pub fn dead_letters(command: DeadLettersCommand) -> anyhow::Result<()> {
    match command {
        DeadLettersCommand::List { config } => {
            let store = open(&config)?;
            let rows = store.dead_letters()?;
            let events = store.dead_events()?;
            if rows.is_empty() && events.is_empty() {
                println!("no dead letters");
                return Ok(());
            }
            if !rows.is_empty() {
                table(
                    "",
                    &[
                        ("ID", 6),
                        ("EVENT", 6),
                        ("SINK", 14),
                        ("DOOR", 16),
                        ("REASON", 12),
                        ("ATTEMPTS", 8),
                        ("LAST ERROR", 0),
                    ],
                    rows.iter().map(|row| {
                        vec![
                            row.id.to_string(),
                            row.seq.to_string(),
                            row.sink.clone(),
                            row.door.clone(),
                            row.dead_reason.map_or_else(|| "-".into(), |r| r.to_string()),
                            row.attempts.to_string(),
                            row.last_error.clone().unwrap_or_else(|| "-".into()),
                        ]
                    }),
                );
            }
            if !events.is_empty() {
                if !rows.is_empty() {
                    println!();
                }
                println!("Events a plugin stopped (retry with --event SEQ):");
                table(
                    "",
                    &[
                        ("SEQ", 6),
                        ("SOURCE", 12),
                        ("KIND", 18),
                        ("DOOR", 16),
                        ("PLUGIN", 14),
                        ("REASON", 16),
                        ("ERROR", 0),
                    ],
                    events.iter().map(|row| {
                        vec![
                            row.seq.to_string(),
                            row.source.clone(),
                            row.kind.clone(),
                            row.door.clone(),
                            row.plugin.clone(),
                            row.reason.clone(),
                            row.error.clone(),
                        ]
                    }),
                );
            }
            Ok(())
        }
        DeadLettersCommand::Retry { which, config } => {
            let mut store = open(&config)?;
            let stale = stale_letters(&config, store.as_ref(), &which)?;
            let (commands, events) = which.apply(
                store.as_mut(),
                |s, ids| s.retry_dead_letters(ids),
                |s, ids| s.retry_dead_events(ids),
            )?;
            println!(
                "{commands} command(s) back in the outbox, {events} event(s) back in the journal; \
                 a running host takes them within a second"
            );
            for line in stale {
                println!("note: {line}");
            }
            Ok(())
        }
        DeadLettersCommand::Drop { which, config } => {
            let (commands, events) = which.apply(
                open(&config)?.as_mut(),
                |s, ids| s.drop_dead_letters(ids),
                |s, ids| s.drop_dead_events(ids),
            )?;
            println!("{commands} dead command(s) and {events} stopped event(s) dropped");
            Ok(())
        }
    }
}

/// What to say of the dead letters `which` names that are already past
/// their sink's `max_age`: a retry of one is dead-lettered again at once,
/// as `expired` — the freshness guard holds for retries too, so a door is
/// never opened late.
fn stale_letters(config: &Path, store: &dyn Records, which: &Which) -> anyhow::Result<Vec<String>> {
    let config = Config::load(config)?;
    let now = now_ms();
    let letters = store.dead_letters()?;
    Ok(letters
        .iter()
        .filter(|row| which.all || which.ids.contains(&row.id))
        .filter_map(|row| {
            let sink = config.sinks.iter().find(|s| s.name == row.sink)?;
            let max_age = sink.retries().max_age?.0;
            let age = std::time::Duration::from_millis(now.saturating_sub(row.due_at).max(0) as u64);
            (age >= max_age).then(|| {
                format!(
                    "command {} is {} old, past sink `{}`'s max_age of {}: it will be dead-lettered again at once \
                     (expired). max_age keeps a door or light from acting late; raise it to send older commands.",
                    row.id,
                    duration(age),
                    row.sink,
                    duration(max_age)
                )
            })
        })
        .collect())
}

/// `d` as people write it: `300ms`, `45s`, `12m`, `3h`.
fn duration(d: std::time::Duration) -> String {
    match d.as_secs() {
        0 => format!("{}ms", d.as_millis()),
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

type Change = fn(&mut dyn Records, &[i64]) -> Result<usize, crate::store::StoreError>;

impl Which {
    /// Apply `commands` and `events` to the chosen ones (an empty list
    /// meaning all, with `--all`); how many of each changed.
    fn apply(&self, store: &mut dyn Records, commands: Change, events: Change) -> anyhow::Result<(usize, usize)> {
        let mut run = |chosen: &[i64], change: Change| {
            if self.all || !chosen.is_empty() {
                change(store, chosen).map_err(anyhow::Error::from)
            } else {
                Ok(0)
            }
        };
        Ok((run(&self.ids, commands)?, run(&self.events, events)?))
    }
}

/// `--since`: a time (`2026-11-22T08:00:00Z`) or how long ago (`30m`, `2h`, `1d`).
pub fn parse_since(text: &str) -> anyhow::Result<i64> {
    if let Ok(ago) = text.parse::<Duration>() {
        return Ok(now_ms() - ago.0.as_millis() as i64);
    }
    parse_iso8601(text).ok_or_else(|| {
        anyhow::anyhow!("--since {text:?}: expected a time such as 2026-11-22T08:00:00Z or a duration such as 2h")
    })
}

pub fn replay(config: &Path, since: &str, source: Option<&str>) -> anyhow::Result<()> {
    let since_ms = parse_since(since)?;
    let mut store = open(config)?;
    if let Some(source) = source {
        let loaded = Config::load(config)?;
        // A source removed from the config may still have events to replay.
        let journaled = !store.events(Some(source), 1)?.is_empty();
        if !journaled && !loaded.sources.iter().any(|s| s.name == source) {
            let known: Vec<&str> = loaded.sources.iter().map(|s| s.name.as_str()).collect();
            return Err(anyhow::anyhow!(
                "--source {source}: no such source in {}; its sources: {}",
                config.display(),
                known.join(", ")
            ));
        }
    }
    let n = store.replay(since_ms, source)?;
    println!(
        "{n} event(s) since {} queued to run again; a running host processes them within a second",
        time(since_ms)
    );
    Ok(())
}

/// Print `rows` under `columns` (name, width; the last column is not
/// padded), or `empty` when there are none.
fn table(empty: &str, columns: &[(&str, usize)], rows: impl ExactSizeIterator<Item = Vec<String>>) {
    if rows.len() == 0 {
        println!("{empty}");
        return;
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(columns)
            .map(|(cell, (_, width))| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join(" ").trim_end());
    };
    line(columns.iter().map(|(name, _)| name.to_string()).collect());
    rows.for_each(line);
}

fn time(ms: i64) -> String {
    format_iso8601(ms.div_euclid(1000))
}

fn run_state(row: &EventRow) -> String {
    match row.run {
        0 => row.state.clone(),
        n => format!("{} (replay {n})", row.state),
    }
}

fn steps(row: &EventRow) -> String {
    if row.steps.is_empty() {
        return "-".into();
    }
    row.steps
        .iter()
        .map(|s| format!("{}: {}", s.plugin, s.result))
        .collect::<Vec<_>>()
        .join("; ")
}

fn command_state(command: &CommandRow) -> String {
    let mut text = format!(
        "{}, {} attempt{}",
        command.state,
        command.attempts,
        if command.attempts == 1 { "" } else { "s" }
    );
    if let Some(reason) = &command.dead_reason {
        text.push_str(&format!(", {reason}"));
    }
    if let Some(error) = &command.last_error {
        text.push_str(&format!(", last error: {error}"));
    }
    text
}
