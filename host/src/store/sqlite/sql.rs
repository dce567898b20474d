//! The statements each change to the journal is.

use rusqlite::{Connection, OptionalExtension, params};

use crate::event::Event;
use crate::store::StoreError;
use crate::store::records::{DeliveryUpdate, PendingCommand};
use crate::store::{Appended, Processed};
use crate::time::now_ms;

/// Store one event unless it is a duplicate.
pub(super) fn append(tx: &Connection, event: &Event, json: &str, dedup_window_ms: i64) -> Result<Appended, StoreError> {
    let now = now_ms();
    let seen: Option<i64> = tx
        .prepare_cached("SELECT at FROM seen WHERE source = ?1 AND event_id = ?2")?
        .query_row(params![event.source, event.id], |row| row.get(0))
        .optional()?;
    if seen.is_some_and(|at| at > now - dedup_window_ms) {
        return Ok(Appended::Duplicate);
    }
    tx.prepare_cached(
        "INSERT INTO seen (source, event_id, at) VALUES (?1, ?2, ?3)
         ON CONFLICT (source, event_id) DO UPDATE SET at = excluded.at",
    )?
    .execute(params![event.source, event.id, now])?;
    tx.prepare_cached(
        "INSERT INTO events (source, event_id, kind, door, received_at, event, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')",
    )?
    .execute(params![
        event.source,
        event.id,
        event.kind,
        event.lane(),
        event.received_at,
        json
    ])?;
    Ok(Appended::Accepted {
        seq: tx.last_insert_rowid(),
    })
}

/// Mark the event done with its outcome (`steps`, JSON) and store its
/// commands (`commands`, the JSON of each, in order); returns those that are
/// new (a command already stored by an earlier, interrupted run keeps its row).
pub(super) fn record_processed(
    tx: &Connection,
    processed: &Processed,
    steps: &str,
    commands: &[String],
) -> Result<Vec<PendingCommand>, StoreError> {
    let now = now_ms();
    tx.prepare_cached("UPDATE events SET state = 'done', outcome = ?2, processed_at = ?3 WHERE seq = ?1")?
        .execute(params![processed.seq, steps, now])?;
    if let Some(dead) = &processed.dead_letter {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO dead_events (seq, plugin, reason, error, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![processed.seq, dead.plugin, dead.reason, dead.error, now])?;
    }
    let mut stored = Vec::new();
    for (new, json) in processed.commands.iter().zip(commands) {
        // A delayed command is due `delay_ms` after its event arrived (now,
        // if that has passed), and its `max_age` counts from then.
        let due = processed.received_at + new.delay_ms as i64;
        let next_at = due.max(now);
        let inserted = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO outbox
                   (seq, plugin, idx, sink, door, idempotency_key, command, received_at, created_at, state, next_at,
                    delay_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?11)",
            )?
            .execute(params![
                processed.seq,
                new.plugin,
                new.index as i64,
                new.command.sink,
                new.door,
                new.key,
                json,
                due,
                now,
                next_at,
                new.delay_ms as i64
            ])?;
        if inserted == 1 {
            stored.push(PendingCommand {
                id: tx.last_insert_rowid(),
                key: new.key.clone(),
                door: new.door.clone(),
                plugin: new.plugin.clone(),
                command: new.command.clone(),
                delay_ms: new.delay_ms,
                received_at: due,
                attempts: 0,
                first_attempt_at: None,
                next_at,
            });
        }
    }
    Ok(stored)
}

pub(super) fn record_delivery(tx: &Connection, id: i64, update: &DeliveryUpdate) -> Result<(), StoreError> {
    let now = now_ms();
    match update {
        DeliveryUpdate::Delivered { attempts } => tx
            .prepare_cached(
                "UPDATE outbox SET state = 'delivered', attempts = ?2, done_at = ?3, last_error = NULL WHERE id = ?1",
            )?
            .execute(params![id, attempts, now])?,
        DeliveryUpdate::Retry {
            attempts,
            first_attempt_at,
            next_at,
            error,
        } => tx
            .prepare_cached(
                "UPDATE outbox SET attempts = ?2, first_attempt_at = ?3, next_at = ?4, last_error = ?5 WHERE id = ?1",
            )?
            .execute(params![id, attempts, first_attempt_at, next_at, error])?,
        DeliveryUpdate::Superseded => tx
            .prepare_cached("UPDATE outbox SET state = 'dead', dead_reason = 'superseded', done_at = ?2 WHERE id = ?1")?
            .execute(params![id, now])?,
        DeliveryUpdate::Dead {
            attempts,
            reason,
            error,
        } => tx
            .prepare_cached(
                "UPDATE outbox SET state = 'dead', attempts = ?2, dead_reason = ?3, last_error = ?4, done_at = ?5
                 WHERE id = ?1",
            )?
            .execute(params![id, attempts, reason, error, now])?,
    };
    Ok(())
}
