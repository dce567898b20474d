//! Ingest: the HTTP server vendors post to. It routes by path to a source,
//! verifies, normalizes, queues the event for the pipeline and answers —
//! before any plugin runs, because vendors wait only briefly (Verkada: 2 s)
//! and retry. [`unifi_ws`] is the other way in: a WebSocket we dial.

pub mod dialers;
pub mod listener;
pub mod refusals;
pub mod replay;
pub mod routes;
pub mod tls;
pub mod unifi_ws;

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::store::{Appended, Journal, StoreError};
use crate::time::now_ms;
use crate::vendors::{self, NormalizeError, VerifyError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use replay::ReplayGuard;
pub use routes::Routes;

/// The routes in force now (the live set's).
pub type CurrentRoutes = Arc<dyn Fn() -> Arc<Routes> + Send + Sync>;

/// The ingest server: the live set's routes, and where accepted events go.
pub struct Ingest {
    routes: CurrentRoutes,
    journal: Arc<dyn Journal>,
    /// Timestamped requests accepted lately; outlives reloads.
    replays: ReplayGuard,
    /// Refusals, for the log (see [`refusals`]).
    pub refusals: refusals::Refusals,
    metrics: Arc<Metrics>,
}

/// Why a request was not accepted. The sender sees only the status and the
/// short [`reason`](IngestError::reason); the rest goes to our log.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no source at this path")]
    NotFound,
    #[error("only POST is accepted")]
    MethodNotAllowed,
    #[error("body over {0} bytes")]
    TooLarge(u64),
    #[error("reading the body failed: {0}")]
    Body(String),
    #[error("the body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Malformed(#[from] NormalizeError),
    #[error("the pipeline queue is full")]
    Overloaded,
    #[error("the journal could not store the event: {0}")]
    Journal(StoreError),
    #[error("shutting down")]
    ShuttingDown,
}

impl IngestError {
    pub const fn status(&self) -> StatusCode {
        match self {
            IngestError::NotFound => StatusCode::NOT_FOUND,
            IngestError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            IngestError::Body(_) | IngestError::Malformed(_) => StatusCode::BAD_REQUEST,
            IngestError::Verify(_) => StatusCode::UNAUTHORIZED,
            IngestError::Overloaded | IngestError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::Journal(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::NotFound => "not_found",
            IngestError::MethodNotAllowed => "method_not_allowed",
            IngestError::TooLarge(_) => "body_too_large",
            IngestError::Body(_) => "body_unreadable",
            IngestError::BodyTimeout(_) => "body_timeout",
            IngestError::Verify(e) => e.reason(),
            IngestError::Malformed(_) => "malformed_body",
            IngestError::Overloaded => "overloaded",
            IngestError::Journal(_) => "journal_unavailable",
            IngestError::ShuttingDown => "shutting_down",
        }
    }
}

impl Ingest {
    /// Requests are counted in `metrics`.
    pub fn new(routes: CurrentRoutes, journal: Arc<dyn Journal>, metrics: Arc<Metrics>) -> Ingest {
        Ingest {
            routes,
            journal,
            replays: ReplayGuard::default(),
            refusals: refusals::Refusals::default(),
            metrics,
        }
    }

    /// Count one request to `path` by its result.
    fn count(&self, routes: &Routes, path: &str, result: &'static str) {
        let route = routes.by_path.get(path);
        let source = route.map_or("-", |r| r.name.as_str());
        self.metrics
            .request(source, route.map_or("-", |r| r.vendor.name()), result);
    }

    /// Answer one request.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_string();
        // One request, one set of routes: a reload meanwhile does not
        // change the rules halfway.
        let routes = (self.routes)();
        let routes = &*routes;
        match self.accept(routes, request).await {
            // Vendors retry until they get a 2xx: a repeat is acknowledged
            // like the first, and not processed again. The id is the
            // vendor's, so it is escaped as JSON, never pasted in.
            Ok((id, appended)) => {
                let status = match appended {
                    Appended::Accepted { .. } => "accepted",
                    Appended::Duplicate => "duplicate",
                };
                self.count(routes, &path, status);
                json(StatusCode::OK, &answer(status, &id))
            }
            Err(error) => {
                let source = routes.by_path.get(&path).map_or("-", |r| r.name.as_str());
                let reason = error.reason();
                self.count(routes, &path, reason);
                self.refusals.refused(source, reason, || {
                    // The path a scanner tried is its own; shown escaped.
                    let path = crate::plugins::text::shown(&path, 256);
                    tracing::warn!(%source, %path, reason, error = %error, "Request refused; more like it are counted, not logged.")
                });
                json(error.status(), &serde_json::json!({ "error": reason }).to_string())
            }
        }
    }

    /// Verify, normalize and journal the event; `Ok` once it is stored.
    async fn accept(&self, routes: &Routes, request: Request<Incoming>) -> Result<(String, Appended), IngestError> {
        let route = routes.by_path.get(request.uri().path()).ok_or(IngestError::NotFound)?;
        let max_body = routes.max_body;
        if request.method() != Method::POST {
            return Err(IngestError::MethodNotAllowed);
        }
        let (parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_body) {
            return Err(IngestError::TooLarge(max_body));
        }
        let body = tokio::time::timeout(routes.body_timeout, Limited::new(body, max_body as usize).collect())
            .await
            .map_err(|_| IngestError::BodyTimeout(routes.body_timeout))?
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    IngestError::TooLarge(max_body)
                } else {
                    IngestError::Body(e.to_string())
                }
            })?
            .to_bytes();

        let request = vendors::Request {
            source: &route.name,
            headers: &parts.headers,
            body: &body,
            received_at: now_ms(),
            id_key: self.journal.id_key(),
        };
        route.auth.check_request(&parts.headers)?;
        let verified = route.vendor.verify(&request, &route.auth)?;
        let replay = verified
            .signed_at
            .zip(verified.replayable_until)
            .map(|(signed_at, until)| (ReplayGuard::key(&route.name, signed_at, &body), until));
        if let Some((key, _)) = &replay
            && self.replays.seen(key)
        {
            return Err(VerifyError::Replayed.into());
        }
        let event = route.vendor.normalize(&request, verified)?;
        let id = event.id.clone();
        if self.journal.backlog() >= routes.capacity {
            return Err(IngestError::Overloaded);
        }
        let appended = self.journal.append(event).await.map_err(|e| match e {
            StoreError::Closed => IngestError::ShuttingDown,
            e => IngestError::Journal(e),
        })?;
        if let Some((key, until)) = replay {
            self.replays.accepted(key, until);
        }
        tracing::debug!(source = %route.name, event = %id, ?appended, "Event accepted.");
        Ok((id, appended))
    }
}

/// `{"status":…,"id":…}`, in that order, the id escaped as JSON: it is the
/// vendor's.
fn answer(status: &str, id: &str) -> String {
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        status: &'a str,
        id: &'a str,
    }
    serde_json::to_string(&Answer { status, id }).unwrap_or_default()
}

pub(crate) fn json(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    /// The id in the answer is the vendor's (a Standard Webhooks
    /// `webhook-id` may hold any header character): it stays one JSON string.
    #[test]
    fn a_vendor_id_cannot_break_the_answer() {
        let said = super::answer("accepted", r#"msg","status":"forged"#);
        assert_eq!(said, r#"{"status":"accepted","id":"msg\",\"status\":\"forged"}"#);
        let parsed: serde_json::Value = serde_json::from_str(&said).unwrap();
        assert_eq!(parsed["status"], "accepted");
    }
}
