//! Silent sources and doors: a controller that stops sending is a security
//! problem nobody notices. A source (or door) with `silent_after` that sends
//! nothing for that long gets a `source.silent` event, made here and
//! journaled like any other so that plugins can page someone; its next
//! event brings a `source.back` (see [`super::ObservedJournal`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Observer;
use super::activity::{Change, Watched};
use crate::event::{Attribute, Door, Event, Kind};
use crate::store::{Journal, StoreError};
use crate::time::{format_iso8601, now_ms};

/// Whether an event of `kind` is one the host makes about a source.
pub fn is_own(kind: &str) -> bool {
    kind == Kind::SourceSilent.as_str() || kind == Kind::SourceBack.as_str()
}

/// The `source.silent` event for `change`, a source of `vendor` quiet for
/// `after_ms`.
pub fn silent(change: &Change, vendor: &str, after_ms: i64) -> Event {
    let mut event = made(Kind::SourceSilent, change, vendor);
    event.attr("silent_after_s", (after_ms / 1000).to_string());
    event
}

/// The `source.back` event for `change`, which ended a silence.
pub fn back(change: &Change, vendor: &str) -> Event {
    let mut event = made(Kind::SourceBack, change, vendor);
    event.attr("silent_s", ((now_ms() - change.since) / 1000).to_string());
    event
}

fn made(kind: Kind, change: &Change, vendor: &str) -> Event {
    let now = now_ms();
    let door = change.door.as_deref().unwrap_or("");
    let mut event = Event {
        // One per silence: the same silence is never journaled twice.
        id: format!("{}:{}:{}:{}", kind.as_str(), change.source, door, change.since),
        source: change.source.clone(),
        vendor: vendor.to_string(),
        vendor_event_type: format!("vestibule.{}", kind.as_str()),
        kind: kind.as_str().to_string(),
        occurred_at: now,
        received_at: now,
        door: change.door.as_ref().map(|name| Door {
            id: None,
            name: Some(name.clone()),
            location: None,
        }),
        actor: None,
        credential: None,
        device: None,
        attributes: Vec::<Attribute>::new(),
        raw: String::new(),
    };
    event.attr("silent_since", format_iso8601(change.since / 1000));
    if let Some(last) = change.last_at {
        event.attr("last_event_at", format_iso8601(last / 1000));
    }
    event.raw = serde_json::json!({
        "kind": kind.as_str(),
        "source": change.source,
        "door": change.door,
        "last_event_at": change.last_at.map(|at| format_iso8601(at / 1000)),
    })
    .to_string();
    event
}

/// What is watched, and each source's vendor, as the live config says.
pub type CurrentWatch = Arc<dyn Fn() -> Vec<(Watched, String)> + Send + Sync>;

/// Look for silences until `stop` turns true, often enough to notice the
/// shortest `silent_after` within a tenth of it (at most once a second).
pub async fn run(
    watched: CurrentWatch,
    observer: Arc<Observer>,
    journal: Arc<dyn Journal>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let now_watched = watched();
        let shortest = now_watched.iter().map(|(w, _)| w.after_ms).min().unwrap_or(1000);
        let tick = Duration::from_millis((shortest / 10).clamp(50, 1000) as u64);
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let list: Vec<Watched> = now_watched.iter().map(|(w, _)| w.clone()).collect();
        for change in observer.activity.fell_silent(&list, now_ms()) {
            let Some((watch, vendor)) = now_watched
                .iter()
                .find(|(w, _)| w.source == change.source && w.door == change.door)
            else {
                continue;
            };
            tracing::warn!(source = %change.source, door = change.door.as_deref().unwrap_or("-"), silent_for = ?Duration::from_millis(watch.after_ms as u64), "Nothing heard from the source for its silent_after.");
            match journal.append(silent(&change, vendor, watch.after_ms)).await {
                Ok(_) => {}
                Err(StoreError::Closed) => return,
                Err(e) => {
                    tracing::error!(source = %change.source, error = %e, "The source.silent event could not be journaled.")
                }
            }
        }
    }
}
