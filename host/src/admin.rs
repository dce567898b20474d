//! The host's own endpoints, on the ingest listener: `GET /admin/status`,
//! `POST /admin/reload`, `GET /metrics` and the console under `/console`.
//! Off (404) unless `[admin]` names a token; every request must carry it as
//! `Authorization: Bearer …` (but for the console's page and its two files,
//! which hold nothing and cannot send a header); and only over loopback
//! unless `[admin] public = true`, so a host listening on a public address
//! does not offer its controls to the world.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::config::{METRICS_PATH, is_host_path};
use crate::console::{self, Console};
use crate::ingest::listener::Body;
use crate::live::{Generation, Live};
use crate::observe::Observer;
use crate::reload::{Reloader, Trigger};
use crate::store::Journal;
use crate::time::format_iso8601;

pub struct Admin {
    live: Arc<Live>,
    reloader: Arc<Reloader>,
    journal: Arc<dyn Journal>,
    observer: Arc<Observer>,
    console: Console,
}

impl Admin {
    pub fn new(
        live: Arc<Live>,
        reloader: Arc<Reloader>,
        journal: Arc<dyn Journal>,
        observer: Arc<Observer>,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Admin {
        let console = Console::new(journal.clone(), observer.clone(), reloader.clone(), stopping);
        Admin {
            live,
            reloader,
            journal,
            observer,
            console,
        }
    }

    /// Whether `path` is answered here rather than by ingest.
    pub fn serves(path: &str) -> bool {
        is_host_path(path)
    }

    /// Answer one request for the host's own paths from `peer`.
    pub async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let generation = self.live.current();
        let Some(token) = &generation.admin_token else {
            return error(StatusCode::NOT_FOUND, "not_found");
        };
        let public = generation.config.admin.as_ref().is_some_and(|a| a.public);
        if !reachable(peer, public) {
            tracing::warn!(%peer, path = %request.uri().path(), "Admin request from another machine refused ([admin] public is off).");
            return error(StatusCode::NOT_FOUND, "not_found");
        }
        let path = request.uri().path().to_string();
        if console::is_asset(&path) {
            return match *request.method() {
                Method::GET | Method::HEAD => self.console.asset(&path),
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            };
        }
        let presented = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            None => return error(StatusCode::UNAUTHORIZED, "auth_missing"),
            // Constant time: the answer's timing says nothing of how much
            // of a guess was right.
            Some(presented) if !bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) => {
                tracing::warn!(path = %request.uri().path(), "Admin request with a wrong token refused.");
                return error(StatusCode::UNAUTHORIZED, "auth_invalid");
            }
            Some(_) => {}
        }
        if path.starts_with("/console/api/") {
            return self.console.api(request, &generation).await;
        }
        match (request.method(), path.as_str()) {
            (&Method::GET, METRICS_PATH) => self.metrics(&generation),
            (&Method::GET, "/admin/status") => {
                let store = self.journal.status().await;
                json(StatusCode::OK, &self.status(&generation, store).to_string())
            }
            (&Method::POST, "/admin/reload") => {
                drop(generation);
                let report = self.reloader.reload(Trigger::Admin).await;
                // 422: the request was fine, the files it asked to load are not.
                let status = if report.ok() {
                    StatusCode::OK
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                json(status, &serde_json::to_string(&report).unwrap_or_default())
            }
            (_, "/admin/status" | "/admin/reload" | METRICS_PATH) => {
                error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
            }
            _ => error(StatusCode::NOT_FOUND, "not_found"),
        }
    }

    /// `GET /metrics`: the gauges of state set now, then everything.
    fn metrics(&self, generation: &Generation) -> Response<Body> {
        let metrics = &self.observer.metrics;
        metrics.queue_depth.set(self.journal.backlog() as i64);
        metrics.queue_capacity.set(generation.config.server.queue as i64);
        metrics.plugin_suspended.clear();
        for plugin in generation.pipeline.plugins() {
            let suspended = plugin.health.report().state == crate::plugins::BreakerState::Suspended;
            let labels = crate::metrics::PluginLabels {
                plugin: plugin.name.clone(),
            };
            metrics.plugin_suspended.get_or_create(&labels).set(suspended as i64);
        }
        let sinks = generation.config.sinks.iter().map(|s| s.name.as_str());
        self.observer.deliveries.report(sinks);
        known_at_zero(metrics, generation);
        Response::builder()
            .status(StatusCode::OK)
            .header(hyper::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)
            .body(Full::new(Bytes::from(metrics.encode())).boxed_unsync())
            .expect("static response parts are valid")
    }

    /// What is running: the config and every plugin by content hash, the
    /// sources and sinks by name, and how reloads went. No secrets and no
    /// addresses of sinks (their URLs may carry credentials).
    fn status(&self, generation: &Generation, store: serde_json::Value) -> serde_json::Value {
        let config = &generation.config;
        let plugins: Vec<_> = generation
            .pipeline
            .plugins()
            .map(|p| {
                json!({
                    "name": p.name,
                    "world": p.world.to_string(),
                    "path": p.path.display().to_string(),
                    "sha256": p.compiled.sha256,
                    "loaded_at": format_iso8601(p.compiled.loaded_at / 1000),
                    "compiled": p.compiled.origin,
                    "on_error": p.on_error.as_str(),
                    "health": p.health.report(),
                })
            })
            .collect();
        let activity = self.observer.activity.report();
        let checks = crate::connect::status::last(config);
        let sources: Vec<_> = config
            .sources
            .iter()
            .map(|s| {
                let at = if s.vendor.dials_out() { None } else { Some(s.path()) };
                let seen = activity.iter().find(|a| a.name == s.name);
                json!({
                    "name": s.name,
                    "vendor": s.vendor.as_str(),
                    "path": at,
                    "last_event_at": seen.and_then(|a| a.last_event_at).map(|ms| format_iso8601(ms / 1000)),
                    "silent": seen.is_some_and(|a| a.silent),
                    "connect": checks.get(&s.name),
                })
            })
            .collect();
        let sinks: Vec<_> = config
            .sinks
            .iter()
            .map(|s| json!({ "name": s.name, "kind": s.kind().as_str() }))
            .collect();
        json!({
            "config": {
                "file": config.file.display().to_string(),
                "sha256": config.sha256,
                "loaded_at": format_iso8601(generation.loaded_at / 1000),
            },
            "listen": config.server.listen.to_string(),
            "plugins": plugins,
            "sources": sources,
            "sinks": sinks,
            "reloads": self.reloader.history(),
            "journal": {
                "durable": self.journal.durable(),
                "backlog": self.journal.backlog(),
                "unattempted": self.journal.unattempted(),
            },
            "store": store,
        })
    }
}

/// Series that can be known before anything happened start at 0, so that
/// a rate or an alert on them works from the first scrape.
fn known_at_zero(metrics: &crate::metrics::Metrics, generation: &Generation) {
    use crate::metrics::{DeadEventLabels, DeadLabels, DeliveryLabels, ResultLabels};
    for result in ["ok", "failed"] {
        let _ = metrics.reloads.get_or_create(&ResultLabels { result: result.into() });
    }
    for sink in &generation.config.sinks {
        for outcome in ["delivered", "failed"] {
            let labels = DeliveryLabels {
                sink: sink.name.clone(),
                outcome: outcome.into(),
            };
            let _ = metrics.deliveries.get_or_create(&labels);
        }
        for reason in crate::store::DeadReason::ALL {
            let labels = DeadLabels {
                sink: sink.name.clone(),
                reason: reason.as_str().into(),
            };
            let _ = metrics.dead_letters.get_or_create(&labels);
        }
    }
    let stopping = generation
        .pipeline
        .plugins()
        .filter(|p| p.on_error == crate::config::OnError::DeadLetter);
    for plugin in stopping {
        for reason in crate::plugins::FailureReason::ALL {
            let labels = DeadEventLabels {
                plugin: plugin.name.clone(),
                reason: reason.as_str().into(),
            };
            let _ = metrics.dead_events.get_or_create(&labels);
        }
    }
}

/// Whether a request from `peer` may reach the admin endpoints.
fn reachable(peer: SocketAddr, public: bool) -> bool {
    public || peer.ip().is_loopback() || peer.ip().to_canonical().is_loopback()
}

fn json(status: StatusCode, body: &str) -> Response<Body> {
    crate::ingest::json(status, body).map(BodyExt::boxed_unsync)
}

fn error(status: StatusCode, reason: &str) -> Response<Body> {
    json(status, &json!({ "error": reason }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_unless_public() {
        let peer = |text: &str| text.parse::<SocketAddr>().unwrap();
        assert!(reachable(peer("127.0.0.1:5000"), false));
        assert!(reachable(peer("[::1]:5000"), false));
        assert!(reachable(peer("[::ffff:127.0.0.1]:5000"), false));
        assert!(!reachable(peer("10.0.0.7:5000"), false));
        assert!(!reachable(peer("[2001:db8::7]:5000"), false));
        assert!(reachable(peer("10.0.0.7:5000"), true));
    }
}
