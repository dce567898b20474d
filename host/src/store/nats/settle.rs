//! Writing what a message led to, then marking it done: an event's run
//! (its partition's floor passes it) or a command's delivery (it is
//! acknowledged) — tried again while this node owns the partition.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};

use super::Cluster;
use super::floor::Floor;
use super::held::{HeldEvent, Write};
use super::owner::Ownership;
use super::publish::record;
use crate::lanes::Lanes;
use crate::store::{Processed, StoreError};

/// A door's outcome waiting to be written, and the write close waits for.
pub(super) type Outcome = (HeldEvent, Processed, Write);

/// Write `door`'s outcomes, one after the other, until none waits.
pub(super) async fn write_outcomes(
    door: (String, String),
    outcomes: Lanes<(String, String), Outcome>,
    cluster: Cluster,
    ownership: Arc<Ownership>,
    backlog: Arc<AtomicUsize>,
) {
    while let Some((held, processed, _write)) = outcomes.next(&door) {
        let owned = || ownership.owns(held.partition);
        let seq = held.message.info().map_or(0, |i| i.stream_sequence);
        let done = Done::Floor(&held.floor, seq);
        settle(done, Some(held.partition), &ownership, || {
            record(&cluster, &held, &processed, &owned)
        })
        .await;
        backlog.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What says a message is done once what it led to is written.
pub(super) enum Done<'a> {
    /// A command's: acknowledged (a plain ack: one that is lost only has
    /// the command tried again, which its state says is done).
    Ack(&'a Message),
    /// An event's: its partition's floor may pass it.
    Floor(&'a Floor, u64),
}

/// Write what `write` writes, then mark the message done. A write that
/// fails is tried again while this node owns the partition, since nothing
/// of its door may be written before it; once another node owns it, that
/// node runs the message again. A delayed command, in no partition, is
/// handed back to be tried later.
pub(super) async fn settle<F, Fut>(done: Done<'_>, partition: Option<u32>, ownership: &Ownership, mut write: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let mut wait = Duration::from_millis(200);
    loop {
        if let Some(p) = partition
            && !ownership.owns(p)
        {
            if !ownership.keeps(p) {
                // Its next owner runs it again; writing now could land
                // after what that owner writes of the same door.
                tracing::debug!(partition = p, "Not writing for a partition this node no longer owns.");
                return;
            }
            // A renewal is late: wait for it, or for the lease to be lost.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let error = match write().await {
            Ok(()) => {
                match done {
                    Done::Ack(message) => {
                        if let Err(e) = message.ack().await {
                            tracing::warn!(error = %e, "Acknowledging failed; what it was for runs again.");
                        }
                    }
                    Done::Floor(floor, seq) => floor.written(seq),
                }
                return;
            }
            Err(e) => e,
        };
        match partition {
            Some(p) if ownership.owns(p) => {
                tracing::error!(error = %error, "Writing to the cluster failed; trying again.");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Some(_) => {
                tracing::warn!(error = %error, "Writing to the cluster failed and the partition has another owner now; it runs this again.");
                return;
            }
            None => {
                tracing::error!(error = %error, "Writing to the cluster failed; the command will be tried again.");
                if let Done::Ack(message) = done {
                    let _ = message.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
                }
                return;
            }
        }
    }
}
