//! The live console: one page, served from the binary (HTML, CSS and
//! JavaScript embedded at build time: no CDN, no build step), and the JSON
//! it reads under `/console/api/`.
//!
//! The page and its two files hold nothing of the host's and are served to
//! whoever may reach the admin endpoints (loopback unless `[admin] public`);
//! everything under `/console/api/` also needs the admin token, which the
//! page sends as `Authorization: Bearer …` — so it reads the live tail with
//! `fetch` rather than `EventSource` (which cannot send a header). No CORS
//! headers are ever sent, and a POST from a page of another origin is
//! refused: another site cannot use a browser that has the token.
//!
//! Nothing secret reaches the page: no secrets, tokens or sink addresses,
//! events as `[admin] secrecy` allows, and a command's body only when the
//! plugin that wrote it saw no more than that level.

mod sse;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::event::Event;
use crate::ingest::listener::Body;
use crate::live::Generation;
use crate::observe::{Observer, Passed};
use crate::reload::Reloader;
use crate::secrecy::{Redact, Secrecy, Views};
use crate::store::{CommandRow, Journal, Records, StoreError};

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// Whatever the console reads.
pub struct Console {
    journal: Arc<dyn Journal>,
    observer: Arc<Observer>,
    reloader: Arc<Reloader>,
    /// Turns true when the host stops: live tails end then.
    stopping: watch::Receiver<bool>,
}

/// Whether `path` is one of the console's files, served without a token.
pub fn is_asset(path: &str) -> bool {
    matches!(
        path,
        "/console" | "/console/" | "/console/console.js" | "/console/console.css"
    )
}

impl Console {
    pub fn new(
        journal: Arc<dyn Journal>,
        observer: Arc<Observer>,
        reloader: Arc<Reloader>,
        stopping: watch::Receiver<bool>,
    ) -> Console {
        Console {
            journal,
            observer,
            reloader,
            stopping,
        }
    }

    /// One of the console's files.
    pub fn asset(&self, path: &str) -> Response<Body> {
        let (body, kind) = match path {
            "/console/console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
            "/console/console.css" => (STYLE, "text/css; charset=utf-8"),
            _ => (PAGE, "text/html; charset=utf-8"),
        };
        page_response(StatusCode::OK, kind, Bytes::from_static(body.as_bytes()))
    }

    /// Answer one request under `/console/api/` (its token already checked).
    pub async fn api(&self, request: Request<Incoming>, generation: &Generation) -> Response<Body> {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        if method == Method::POST && cross_origin(&request) {
            tracing::warn!(%path, "Console POST from another origin refused.");
            return error(StatusCode::FORBIDDEN, "cross_origin");
        }
        let level = viewer_level(generation);
        let query = request.uri().query().unwrap_or("").to_string();
        let parts: Vec<&str> = path.trim_start_matches("/console/api/").split('/').collect();
        match (&method, parts.as_slice()) {
            (&Method::GET, ["overview"]) => json_response(StatusCode::OK, &self.overview(generation)),
            (&Method::GET, ["tail"]) => sse::tail(self.observer.tail(), self.stopping.clone(), level),
            (&Method::GET, ["events"]) => {
                let source = param(&query, "source");
                let limit = param(&query, "limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(50usize)
                    .min(500);
                self.read(generation, move |records| {
                    let rows = records.events(source.as_deref(), limit)?;
                    Ok(json!({ "events": rows }))
                })
            }
            (&Method::GET, ["events", id]) => {
                let id = percent_decode(id);
                let plugins = plugin_levels(generation);
                self.read(generation, move |records| {
                    let runs = records.event(&id)?;
                    if runs.is_empty() {
                        return Err(StoreError::NotFound(format!("no event {id}")));
                    }
                    let mut story = story(runs, level, &plugins, &self.observer);
                    for run in story["runs"].as_array_mut().into_iter().flatten() {
                        let source = run["source"].as_str().unwrap_or_default().to_string();
                        run["verified_by"] = json!(verified_how(&generation.config, &source));
                    }
                    Ok(story)
                })
            }
            (&Method::GET, ["dead-letters"]) => {
                let plugins = plugin_levels(generation);
                self.read(generation, move |records| {
                    let commands: Vec<Value> = records
                        .dead_letters()?
                        .into_iter()
                        .map(|c| command(c, level, &plugins, &self.observer))
                        .collect();
                    Ok(json!({ "commands": commands, "events": records.dead_events()? }))
                })
            }
            (
                &Method::POST,
                [
                    which @ ("dead-letters" | "dead-events"),
                    id,
                    action @ ("retry" | "drop"),
                ],
            ) => {
                let Ok(id) = id.parse::<i64>() else {
                    return error(StatusCode::BAD_REQUEST, "bad_id");
                };
                let (which, action) = (which.to_string(), action.to_string());
                let response = self.read(generation, move |records| {
                    let done = match (which.as_str(), action.as_str()) {
                        ("dead-letters", "retry") => records.retry_dead_letters(&[id])?,
                        ("dead-letters", _) => records.drop_dead_letters(&[id])?,
                        (_, "retry") => records.retry_dead_events(&[id])?,
                        _ => records.drop_dead_events(&[id])?,
                    };
                    if done == 0 {
                        return Err(StoreError::NotFound(format!("no dead letter {id}")));
                    }
                    Ok(json!({ "done": done }))
                });
                tracing::info!(%path, status = %response.status(), "Console action.");
                response
            }
            (_, ["overview" | "tail" | "events" | "dead-letters"]) => {
                error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
            }
            _ => error(StatusCode::NOT_FOUND, "not_found"),
        }
    }

    /// Run `read` on the store's records, as the command line would.
    fn read(
        &self,
        generation: &Generation,
        read: impl FnOnce(&mut dyn Records) -> Result<Value, StoreError>,
    ) -> Response<Body> {
        let config = &generation.config;
        if config.store.kind == crate::config::StoreKind::Sqlite && config.store.path.is_none() {
            return error(StatusCode::SERVICE_UNAVAILABLE, "journal_in_memory");
        }
        // The store's reads are blocking (SQLite, or NATS through a
        // blocking wrapper): off the async workers' backs.
        let result = tokio::task::block_in_place(|| {
            let mut records = crate::store::records(config)?;
            read(records.as_mut())
        });
        match result {
            Ok(value) => json_response(StatusCode::OK, &value),
            Err(StoreError::NotFound(what)) => {
                json_response(StatusCode::NOT_FOUND, &json!({ "error": "not_found", "message": what }))
            }
            Err(e) => {
                tracing::warn!(error = %e, "The console could not read the journal.");
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({ "error": "journal_unavailable", "message": e.to_string() }),
                )
            }
        }
    }

    /// Plugins, sinks, sources, reloads and the queue, now.
    fn overview(&self, generation: &Generation) -> Value {
        let config = &generation.config;
        let plugins: Vec<Value> = generation
            .pipeline
            .plugins()
            .map(|p| {
                let times = self.observer.call_times(&p.name);
                json!({
                    "name": p.name,
                    "world": p.world.to_string(),
                    "sha256": p.compiled.sha256,
                    "loaded_at": p.compiled.loaded_at / 1000,
                    "on_error": p.on_error.as_str(),
                    "health": p.health.report(),
                    "p50_us": times.map(|t| t.0),
                    "p99_us": times.map(|t| t.1),
                    "recent_calls": times.map_or(0, |t| t.2),
                })
            })
            .collect();
        let kinds: std::collections::BTreeMap<&str, &str> = config
            .sinks
            .iter()
            .map(|s| (s.name.as_str(), s.kind().as_str()))
            .collect();
        let sinks: Vec<Value> = self
            .observer
            .deliveries
            .report(kinds.keys().copied())
            .into_iter()
            .map(|(name, report)| {
                let mut value = json!(report);
                value["name"] = json!(name);
                value["kind"] = json!(kinds.get(name.as_str()));
                value
            })
            .collect();
        let activity = self.observer.activity.report();
        let sources: Vec<Value> = config
            .sources
            .iter()
            .map(|s| {
                let seen = activity.iter().find(|a| a.name == s.name);
                json!({
                    "name": s.name,
                    "vendor": s.vendor.as_str(),
                    "silent_after_s": s.silent_after.map(|d| d.0.as_secs()),
                    "last_event_at": seen.and_then(|a| a.last_event_at),
                    "events": seen.map_or(0, |a| a.events),
                    "per_minute": seen.map_or(0, |a| a.per_minute),
                    "silent": seen.is_some_and(|a| a.silent),
                    "silent_doors": seen.map(|a| a.silent_doors.clone()).unwrap_or_default(),
                })
            })
            .collect();
        json!({
            "secrecy": viewer_level(generation) as u8,
            "config": { "sha256": config.sha256, "loaded_at": generation.loaded_at / 1000 },
            "queue": { "depth": self.journal.backlog(), "capacity": config.server.queue },
            "plugins": plugins,
            "sinks": sinks,
            "sources": sources,
            "reloads": self.reloader.history(),
        })
    }
}

/// The level the console views events at.
fn viewer_level(generation: &Generation) -> Secrecy {
    generation.config.admin.as_ref().map(|a| a.secrecy).unwrap_or_default()
}

/// Each running plugin's secrecy level, by name.
fn plugin_levels(generation: &Generation) -> std::collections::HashMap<String, Secrecy> {
    generation
        .pipeline
        .plugins()
        .map(|p| (p.name.clone(), p.secrecy))
        .collect()
}

/// `event` as a viewer at `level` may see it.
pub fn seen_at(event: Event, level: Secrecy) -> Event {
    let vendor = crate::vendors::by_name(&event.vendor).map(|v| v as &dyn Redact);
    Views::new(event, [level], vendor).get(level).clone()
}

/// The tail's line for one processed event.
pub fn tail_line(passed: &Passed, level: Secrecy) -> Value {
    let event = seen_at(passed.event.clone(), level);
    let actor = event
        .actor
        .as_ref()
        .and_then(|a| a.name.clone().or_else(|| a.id.clone()));
    json!({
        "seq": passed.seq,
        "run": passed.run,
        "id": event.id,
        "at": passed.at,
        "received_at": event.received_at,
        "source": event.source,
        "kind": event.kind,
        "door": event.lane(),
        "actor": actor,
        "steps": steps(&passed.steps),
        "commands": passed.commands,
        "dead_letter": passed.dead_letter,
    })
}

fn steps(steps: &[crate::store::Step]) -> Vec<Value> {
    steps
        .iter()
        .map(|s| {
            let failed = matches!(s.result, crate::store::StepResult::Failed { .. });
            json!({ "plugin": s.plugin, "result": s.result.to_string(), "failed": failed, "micros": s.micros })
        })
        .collect()
}

/// A stored command as the console shows it: its body only if the plugin
/// that wrote it was cleared no further than the viewer.
fn command(
    row: CommandRow,
    level: Secrecy,
    plugins: &std::collections::HashMap<String, Secrecy>,
    observer: &Observer,
) -> Value {
    let shown = plugins.get(&row.plugin).is_some_and(|plugin| *plugin >= level);
    let attempts = observer.deliveries.attempts(row.id);
    json!({
        "id": row.id,
        "seq": row.seq,
        "plugin": row.plugin,
        "sink": row.sink,
        "door": row.door,
        "idempotency_key": row.idempotency_key,
        "body": if shown { Some(row.body) } else { None },
        "state": row.state,
        "dead_reason": row.dead_reason.map(|r| r.as_str()),
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "due_at": row.due_at,
        "done_at": row.done_at,
        "attempt_log": attempts,
    })
}

/// Every run of one event: how it came in, what each plugin did, its
/// commands and their delivery attempts.
fn story(
    runs: Vec<crate::store::EventRun>,
    level: Secrecy,
    plugins: &std::collections::HashMap<String, Secrecy>,
    observer: &Observer,
) -> Value {
    let runs: Vec<Value> = runs
        .into_iter()
        .map(|(row, event, commands)| {
            let event = serde_json::from_str::<Event>(&event).ok().map(|e| seen_at(e, level));
            let raw = event.as_ref().and_then(|e| serde_json::from_str::<Value>(&e.raw).ok());
            let commands: Vec<Value> = commands
                .into_iter()
                .map(|c| command(c, level, plugins, observer))
                .collect();
            json!({
                "seq": row.seq,
                "run": row.run,
                "id": row.event_id,
                "source": row.source,
                "kind": row.kind,
                "door": row.door,
                "received_at": row.received_at,
                "state": row.state,
                "event": event.as_ref().map(|e| {
                    let mut value = json!(e);
                    value["raw"] = raw.clone().unwrap_or(Value::Null);
                    value
                }),
                "steps": steps(&row.steps),
                "commands": commands,
            })
        })
        .collect();
    json!({ "secrecy": level as u8, "runs": runs })
}

/// How the source's requests are proven genuine, as its config says now: the
/// vendor's signature, HTTP Basic, required headers, or our own connection.
fn verified_how(config: &crate::config::Config, source: &str) -> Option<String> {
    let source = config.sources.iter().find(|s| s.name == source)?;
    let vendor = source.vendor.as_str();
    let Some(auth) = source.settings.source().auth() else {
        return Some(format!("{vendor}: over the host's own connection to the controller"));
    };
    let mut how = Vec::new();
    if auth.has_secret() {
        how.push(format!("{vendor} signature"));
    }
    if auth.basic_auth.is_some() {
        how.push("HTTP Basic".to_string());
    }
    if auth.headers.is_some_and(|h| !h.is_empty()) {
        how.push("required headers".to_string());
    }
    Some(how.join(" + "))
}

/// Whether a request says it comes from a page of another origin than the
/// host it was sent to.
fn cross_origin(request: &Request<Incoming>) -> bool {
    let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site").is_some_and(|site| site != "same-origin" && site != "none") {
        return true;
    }
    match (header("origin"), header("host")) {
        (None, _) => false,
        (Some(origin), Some(host)) => {
            let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            authority != host
        }
        (Some(_), None) => true,
    }
}

/// The value of `key` in a query string.
fn param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
}

/// `%XX` and `+` in a query value or path segment, decoded; a `%` not
/// followed by two hex digits is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The headers every console answer carries: not framed, not cached, not
/// guessed at, and scripts only from the host.
fn page_response(status: StatusCode, kind: &str, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, kind)
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .header(hyper::header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(hyper::header::X_FRAME_OPTIONS, "DENY")
        .header(hyper::header::REFERRER_POLICY, "no-referrer")
        .header(
            hyper::header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        )
        .body(Full::new(body).boxed_unsync())
        .expect("static response parts are valid")
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    page_response(status, "application/json", Bytes::from(value.to_string()))
}

fn error(status: StatusCode, reason: &str) -> Response<Body> {
    json_response(status, &json!({ "error": reason }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            param("source=front%20door&limit=5", "source").as_deref(),
            Some("front door")
        );
        assert_eq!(param("limit=5", "source"), None);
        assert_eq!(percent_decode("a%2Fb+c%"), "a/b c%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
