//! The live tail as server-sent events: one `data:` line of JSON per
//! processed event, a comment every few seconds so that proxies keep the
//! stream open, and `event: skipped` when the viewer fell behind.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use tokio::sync::{broadcast, watch};

use crate::ingest::listener::Body;
use crate::observe::Passed;
use crate::secrecy::Secrecy;

/// How often an idle stream says it is alive.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

struct Tail {
    events: broadcast::Receiver<Arc<Passed>>,
    stopping: watch::Receiver<bool>,
    level: Secrecy,
    /// The first frame says the stream is open, at once.
    opened: bool,
}

/// The answer to `GET /console/api/tail`: a stream until the viewer goes
/// or the host stops.
pub fn tail(
    events: broadcast::Receiver<Arc<Passed>>,
    stopping: watch::Receiver<bool>,
    level: Secrecy,
) -> Response<Body> {
    let tail = Tail {
        events,
        stopping,
        level,
        opened: false,
    };
    let stream = futures_util::stream::unfold(tail, |mut tail| async move {
        let frame = next(&mut tail).await?;
        Some((Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(frame))), tail))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, "text/event-stream")
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .header(hyper::header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(StreamBody::new(stream).boxed_unsync())
        .expect("static response parts are valid")
}

/// The next frame to send; `None` ends the stream.
async fn next(tail: &mut Tail) -> Option<String> {
    if !std::mem::replace(&mut tail.opened, true) {
        return Some(": open\n\n".to_string());
    }
    if *tail.stopping.borrow() {
        return None;
    }
    tokio::select! {
        received = tail.events.recv() => match received {
            Ok(passed) => Some(format!("data: {}\n\n", super::tail_line(&passed, tail.level))),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(format!("event: skipped\ndata: {n}\n\n")),
            Err(broadcast::error::RecvError::Closed) => None,
        },
        () = tokio::time::sleep(KEEP_ALIVE) => Some(": alive\n\n".to_string()),
        _ = tail.stopping.wait_for(|stop| *stop) => None,
    }
}
