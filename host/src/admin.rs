//! The host's own endpoints, under `/admin/` on the ingest listener:
//! `GET /admin/status` and `POST /admin/reload`. Off (404) unless `[admin]`
//! names a token; every request must carry it as `Authorization: Bearer …`;
//! and only over loopback unless `[admin] public = true`, so a host
//! listening on a public address does not offer its controls to the world.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::ingest::json;
use crate::live::{Generation, Live};
use crate::reload::{Reloader, Trigger};
use crate::store::Journal;
use crate::time::format_iso8601;

pub struct Admin {
    live: Arc<Live>,
    reloader: Arc<Reloader>,
    journal: Arc<dyn Journal>,
}

impl Admin {
    pub fn new(live: Arc<Live>, reloader: Arc<Reloader>, journal: Arc<dyn Journal>) -> Admin {
        Admin {
            live,
            reloader,
            journal,
        }
    }

    /// Answer one request under `/admin/` from `peer`.
    pub async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let generation = self.live.current();
        let Some(token) = &generation.admin_token else {
            return error(StatusCode::NOT_FOUND, "not_found");
        };
        let public = generation.config.admin.as_ref().is_some_and(|a| a.public);
        if !reachable(peer, public) {
            tracing::warn!(%peer, path = %request.uri().path(), "Admin request from another machine refused ([admin] public is off).");
            return error(StatusCode::NOT_FOUND, "not_found");
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
        match (request.method(), request.uri().path()) {
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
            (_, "/admin/status" | "/admin/reload") => error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            _ => error(StatusCode::NOT_FOUND, "not_found"),
        }
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
        let sources: Vec<_> = config
            .sources
            .iter()
            .map(|s| {
                let at = if s.vendor.dials_out() { None } else { Some(s.path()) };
                json!({ "name": s.name, "vendor": s.vendor.as_str(), "path": at })
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

/// Whether a request from `peer` may reach the admin endpoints.
fn reachable(peer: SocketAddr, public: bool) -> bool {
    public || peer.ip().is_loopback() || peer.ip().to_canonical().is_loopback()
}

fn error(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
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
