//! `vestibule plugin run`: one component on one event, or on a folder of
//! events compared with the expected outcome beside each (golden tests).

use anyhow::Context;
use std::path::{Path, PathBuf};

use crate::config::{PluginConfig, World};
use crate::event::Event;
use crate::pipeline::Pipeline;
use crate::plugins::{LoadError, Runtime};
use crate::secrecy::Secrecy;
use serde_json::{Value, json};

/// What `plugin run` takes.
pub struct Options {
    pub plugin: PathBuf,
    pub config: Option<PathBuf>,
    pub secrecy: Secrecy,
    /// Sinks it may send to; empty allows any.
    pub sinks: Vec<String>,
}

/// What one call did, in the terms a plugin author cares about.
struct Report {
    world: World,
    decision: String,
    failure: Option<(String, String)>,
    changes: Vec<String>,
    commands: Vec<Value>,
    logs: Vec<Value>,
    elapsed: std::time::Duration,
}

/// Run the plugin on the event in `event` and print what happened; `Err`
/// when the plugin failed.
pub async fn one(options: &Options, event: &Path) -> anyhow::Result<()> {
    let pipeline = load(options)?;
    let report = call(&pipeline, read_event(event)?).await;
    println!("plugin: {} ({})", options.plugin.display(), report.world);
    println!("decision: {}", report.decision);
    for command in &report.commands {
        let delay = command["delay_ms"].as_u64().unwrap_or(0);
        let after = if delay > 0 {
            format!(" (in {delay} ms)")
        } else {
            String::new()
        };
        let body = match &command["body"] {
            Value::String(text) => text.clone(),
            json => json.to_string(),
        };
        println!("  -> {}{after}: {body}", command["sink"].as_str().unwrap_or_default());
    }
    if !report.changes.is_empty() {
        println!("changed:");
        for change in &report.changes {
            println!("  {change}");
        }
    }
    if !report.logs.is_empty() {
        println!("logs:");
        for line in &report.logs {
            let fields: Vec<String> = line["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    format!(
                        "{}={}",
                        f[0].as_str().unwrap_or_default(),
                        f[1].as_str().unwrap_or_default()
                    )
                })
                .collect();
            println!(
                "  {} {} {}",
                line["level"].as_str().unwrap_or_default(),
                line["message"].as_str().unwrap_or_default(),
                fields.join(" ")
            );
        }
    }
    println!("time: {:.2?}", report.elapsed);
    match &report.failure {
        Some((reason, message)) => {
            println!("limit or failure: {reason}: {message}");
            Err(anyhow::anyhow!("the plugin failed ({reason})"))
        }
        None => {
            println!("limit or failure: none");
            Ok(())
        }
    }
}

/// Run the plugin on every `NAME.json` in `dir` and compare what it did with
/// `NAME.expected.json` beside it (with `bless`, write those instead).
/// `Err` when any differs.
pub async fn golden(options: &Options, dir: &Path, bless: bool) -> anyhow::Result<()> {
    let pipeline = load(options)?;
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| dir.display().to_string())?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.ends_with(".json") && !name.ends_with(".expected.json")
        })
        .collect();
    fixtures.sort();
    if fixtures.is_empty() {
        return Err(anyhow::anyhow!("{}: no NAME.json events in it", dir.display()));
    }
    let mut failed = 0;
    for fixture in &fixtures {
        let name = fixture.file_stem().and_then(|n| n.to_str()).unwrap_or_default();
        let expected_file = fixture.with_file_name(format!("{name}.expected.json"));
        let report = call(&pipeline, read_event(fixture)?).await;
        let got = outcome(&report);
        if bless {
            let text = serde_json::to_string_pretty(&got).unwrap_or_default() + "\n";
            std::fs::write(&expected_file, text).with_context(|| expected_file.display().to_string())?;
            println!("wrote {}", expected_file.display());
            continue;
        }
        let expected: Option<Value> = crate::files::read_text(&expected_file, crate::files::INPUT_LIMIT)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        match expected {
            Some(expected) if expected == got => println!("ok   {name}"),
            Some(expected) => {
                failed += 1;
                println!("FAIL {name}");
                for line in differences(&expected, &got) {
                    println!("     {line}");
                }
            }
            None => {
                failed += 1;
                println!(
                    "FAIL {name}: no readable {} (write it with --bless, then read it)",
                    expected_file.display()
                );
            }
        }
    }
    if bless {
        return Ok(());
    }
    println!("{} passed, {failed} failed", fixtures.len() - failed);
    if failed > 0 {
        Err(anyhow::anyhow!(
            "{failed} of {} events did not come out as expected",
            fixtures.len()
        ))
    } else {
        Ok(())
    }
}

fn read_event(file: &Path) -> anyhow::Result<Event> {
    let text = crate::files::read_text(file, crate::files::INPUT_LIMIT).with_context(|| file.display().to_string())?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a normalized event", file.display()))
}

/// Load the component in whichever world it fits, as the only plugin of a
/// pipeline: the host's own way of running it.
fn load(options: &Options) -> anyhow::Result<Pipeline> {
    let table: toml::Table = match &options.config {
        Some(file) => {
            let text =
                crate::files::read_text(file, crate::files::INPUT_LIMIT).with_context(|| file.display().to_string())?;
            toml::from_str(&text).with_context(|| file.display().to_string())?
        }
        None => toml::Table::new(),
    };
    let runtime = Runtime::new().map_err(|e| anyhow::anyhow!("starting the plugin runtime: {e:#}"))?;
    let name = options.plugin.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin");
    let mut errors = Vec::new();
    for world in [World::Filter, World::Enricher, World::Action] {
        let mut spec = PluginConfig::new(name, world, &options.plugin);
        spec.sinks = if options.sinks.is_empty() {
            vec![crate::plugins::ANY_SINK.to_string()]
        } else {
            options.sinks.clone()
        };
        spec.config = table.clone();
        spec.secrecy = options.secrecy;
        // Once: a failure is reported, not suspended.
        spec.suspend_after = 0;
        match runtime.load(&spec, &options.plugin) {
            Ok(plugin) => return Ok(Pipeline::single(plugin)),
            Err(e @ LoadError::WrongWorld { .. }) => errors.push(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(anyhow::anyhow!(
        "{} fits no plugin world:\n  {}",
        options.plugin.display(),
        errors.join("\n  ")
    ))
}

/// Run `pipeline` (one plugin) on `event`, as the host runs its pipeline.
async fn call(pipeline: &Pipeline, event: Event) -> Report {
    let world = pipeline.plugins().next().map_or(World::Filter, |p| p.world);
    let before = event.clone();
    let outcome = pipeline.run(event).await;
    let (logs, elapsed) = outcome
        .calls
        .into_iter()
        .next()
        .map(|(_, logs, elapsed)| (logs, elapsed))
        .unwrap_or_default();
    let mut report = Report {
        world,
        decision: String::new(),
        failure: None,
        changes: Vec::new(),
        commands: Vec::new(),
        logs: logs
            .iter()
            .map(|line| {
                json!({
                    "level": line.level_name(),
                    "message": line.message,
                    "fields": line.fields,
                })
            })
            .collect(),
        elapsed,
    };
    if let Some((_, failure)) = outcome.failures.first() {
        report.failure = Some((failure.reason().to_string(), failure.to_string()));
        report.decision = "failed".into();
        return report;
    }
    report.decision = match (world, &outcome.dropped) {
        (_, Some((_, reason))) => format!("drop: {reason}"),
        (World::Filter, None) => "keep".into(),
        (World::Enricher, None) => {
            if let Some(after) = &outcome.event {
                report.changes = changes(&before, after);
            }
            "enriched".into()
        }
        (World::Action, None) => {
            report.commands = outcome
                .commands
                .iter()
                .map(|out| {
                    let body =
                        serde_json::from_str::<Value>(&out.body).unwrap_or_else(|_| Value::String(out.body.clone()));
                    json!({ "sink": out.sink, "delay_ms": out.delay_ms, "body": body, "headers": out.headers })
                })
                .collect();
            let n = outcome.commands.len();
            format!("{n} command{}", if n == 1 { "" } else { "s" })
        }
    };
    report
}

/// What an enricher changed, field by field (`raw` aside).
fn changes(before: &Event, after: &Event) -> Vec<String> {
    let flat = |event: &Event| {
        let mut value = serde_json::to_value(event).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.remove("raw");
            map.remove("attributes");
        }
        let mut fields = Vec::new();
        flatten("", &value, &mut fields);
        for attribute in &event.attributes {
            fields.push((
                format!("attribute {}", attribute.key),
                Value::String(attribute.value.clone()),
            ));
        }
        fields
    };
    let (before, after) = (flat(before), flat(after));
    let find = |fields: &[(String, Value)], key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let mut changes = Vec::new();
    for (key, value) in &after {
        match find(&before, key) {
            None => changes.push(format!("+ {key} = {value}")),
            Some(old) if &old != value => changes.push(format!("{key}: {old} -> {value}")),
            Some(_) => {}
        }
    }
    for (key, value) in &before {
        if find(&after, key).is_none() {
            changes.push(format!("- {key} (was {value})"));
        }
    }
    changes
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, child, out);
            }
        }
        Value::Null => {}
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// The golden form of a report: everything but the time.
fn outcome(report: &Report) -> Value {
    let mut value = json!({ "decision": report.decision });
    if let Some((reason, message)) = &report.failure {
        value["failure"] = json!({ "reason": reason, "message": message });
    }
    if !report.changes.is_empty() {
        value["changes"] = json!(report.changes);
    }
    if !report.commands.is_empty() {
        value["commands"] = json!(report.commands);
    }
    if !report.logs.is_empty() {
        value["logs"] = json!(report.logs);
    }
    value
}

/// Where two outcomes differ, one line per field.
fn differences(expected: &Value, got: &Value) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = expected
        .as_object()
        .into_iter()
        .chain(got.as_object())
        .flat_map(|map| map.keys())
        .collect();
    keys.into_iter()
        .filter(|key| expected.get(key.as_str()) != got.get(key.as_str()))
        .map(|key| {
            let show = |v: Option<&Value>| v.map_or("(nothing)".to_string(), Value::to_string);
            format!(
                "{key}: expected {}, got {}",
                show(expected.get(key.as_str())),
                show(got.get(key.as_str()))
            )
        })
        .collect()
}
