//! The journal as the rest of the host writes to it, watched: each accepted
//! event is counted and marks its source and door as heard from (which may
//! end a silence, see [`super::silence`]); each command done with is counted.

use std::sync::Arc;

use super::{Observer, silence};
use crate::event::{Event, IdKey, Kind};
use crate::store::{Appended, DeliveryUpdate, Journal, Pending, Processed, Settings, StoreError};

pub struct ObservedJournal {
    inner: Arc<dyn Journal>,
    observer: Arc<Observer>,
}

impl ObservedJournal {
    pub fn new(inner: Arc<dyn Journal>, observer: Arc<Observer>) -> ObservedJournal {
        ObservedJournal { inner, observer }
    }
}

impl ObservedJournal {
    fn counted(&self, source: &str, kind: &str) {
        self.observer.metrics.event(source, kind);
    }
}

impl Journal for ObservedJournal {
    fn append(&self, event: Event) -> Pending<'_, Result<Appended, StoreError>> {
        Box::pin(async move {
            let (source, vendor, kind, door, at) = (
                event.source.clone(),
                event.vendor.clone(),
                event.kind.clone(),
                event.lane(),
                event.received_at,
            );
            let appended = self.inner.append(event).await?;
            if let Appended::Accepted { .. } = appended {
                self.counted(&source, &kind);
                // The host's own word about a source is not the source speaking.
                if !silence::is_own(&kind) {
                    for back in self.observer.activity.saw(&source, &door, at) {
                        let event = silence::back(&back, &vendor);
                        tracing::info!(source = %back.source, door = back.door.as_deref().unwrap_or("-"), "Events again after a silence.");
                        // Not through `self`: a source.back does not end a silence.
                        match self.inner.append(event).await {
                            Ok(Appended::Accepted { .. }) => self.counted(&back.source, Kind::SourceBack.as_str()),
                            Ok(Appended::Duplicate) => {}
                            Err(e) => {
                                tracing::error!(source = %back.source, error = %e, "The source.back event could not be journaled.")
                            }
                        }
                    }
                }
            }
            Ok(appended)
        })
    }

    fn processed(&self, processed: Processed) {
        self.inner.processed(processed)
    }

    fn holds(&self, id: i64) -> bool {
        self.inner.holds(id)
    }

    fn delivery(&self, id: i64, update: DeliveryUpdate) {
        match &update {
            DeliveryUpdate::Retry { .. } => {}
            DeliveryUpdate::Delivered { .. } | DeliveryUpdate::Superseded | DeliveryUpdate::Released => {
                self.observer.deliveries.finished(id, None)
            }
            DeliveryUpdate::Dead { reason, .. } => self.observer.deliveries.finished(id, Some(reason.as_str())),
        }
        self.inner.delivery(id, update)
    }

    fn configure(&self, settings: Settings) {
        self.inner.configure(settings)
    }

    fn backlog(&self) -> usize {
        self.inner.backlog()
    }

    fn unattempted(&self) -> usize {
        self.inner.unattempted()
    }

    fn attempted(&self) {
        self.inner.attempted()
    }

    fn id_key(&self) -> &IdKey {
        self.inner.id_key()
    }

    fn durable(&self) -> bool {
        self.inner.durable()
    }

    fn quiesce(&self) {
        self.inner.quiesce()
    }

    fn status(&self) -> Pending<'_, serde_json::Value> {
        self.inner.status()
    }

    fn close(&self) -> Pending<'_, ()> {
        self.inner.close()
    }
}
