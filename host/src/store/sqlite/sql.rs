//! The statements each change to the journal is. Each appends: an event is
//! never written again once stored, nor a command; what becomes of them is
//! a row of its own (`outcomes`, `deliveries`).

use rusqlite::{Connection, params};

use super::migrate::id_hash;
use super::seen::Seen;
use crate::event::Event;
use crate::store::StoreError;
use crate::store::records::{DeliveryUpdate, PendingCommand};
use crate::store::{Appended, Processed};
use crate::time::now_ms;

/// An event's JSON as stored: `raw` left empty, for the vendor's body is
/// stored beside it as it came rather than escaped into the JSON.
pub(super) fn json_without_raw(event: &mut Event) -> serde_json::Result<String> {
    let raw = std::mem::take(&mut event.raw);
    let json = serde_json::to_string(event);
    event.raw = raw;
    json
}

/// A stored event back, whole.
pub(super) fn stored_event(json: &str, raw: String) -> serde_json::Result<Event> {
    let mut event: Event = serde_json::from_str(json)?;
    // A migrated event whose JSON could not be split keeps its raw body.
    if !raw.is_empty() {
        event.raw = raw;
    }
    Ok(event)
}

/// A stored event's JSON as the command line shows it, raw body included.
pub(super) fn shown_event(json: String, raw: String) -> String {
    match stored_event(&json, raw) {
        Ok(event) => serde_json::to_string(&event).unwrap_or(json),
        Err(_) => json,
    }
}

/// Store one event unless it is a duplicate: its (source, event id) was
/// accepted within the window (`seen` knows; it learns of this one).
pub(super) fn append(tx: &Connection, seen: &mut Seen, event: &Event, json: &str) -> Result<Appended, StoreError> {
    let now = now_ms();
    if seen.duplicate(tx, &event.source, &event.id, now)? {
        return Ok(Appended::Duplicate);
    }
    tx.prepare_cached(
        "INSERT INTO events (id_hash, source, event_id, kind, door, received_at, accepted_at, event, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        id_hash(&event.id),
        event.source,
        event.id,
        event.kind,
        event.lane(),
        event.received_at,
        now,
        json,
        event.raw
    ])?;
    let seq = tx.last_insert_rowid();
    seen.accepted(&event.source, &event.id, seq, now);
    Ok(Appended::Accepted { seq })
}

/// Record the event's outcome (`steps`, JSON) and store its commands
/// (`commands`, the JSON of each, in order); returns them as stored. An
/// event whose outcome is already recorded (it ran twice: handed out again
/// after a failed commit) keeps the first; this one is dropped.
pub(super) fn record_processed(
    tx: &Connection,
    processed: &Processed,
    steps: &str,
    commands: &[String],
) -> Result<Vec<PendingCommand>, StoreError> {
    let now = now_ms();
    let first = tx
        .prepare_cached("INSERT OR IGNORE INTO outcomes (seq, steps, processed_at) VALUES (?1, ?2, ?3)")?
        .execute(params![processed.seq, steps, now])?;
    if first == 0 {
        return Ok(Vec::new());
    }
    if let Some(dead) = &processed.dead_letter {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO dead_events (seq, plugin, reason, error, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![processed.seq, dead.plugin, dead.reason, dead.error, now])?;
    }
    let mut stored = Vec::with_capacity(commands.len());
    for (new, json) in processed.commands.iter().zip(commands) {
        // A delayed command is due `delay_ms` after its event arrived (now,
        // if that has passed), and its `max_age` counts from then.
        let due = processed.received_at + new.delay_ms as i64;
        tx.prepare_cached(
            "INSERT INTO outbox (seq, plugin, idx, sink, door, idempotency_key, command, received_at, delay_ms, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
            new.delay_ms as i64,
            now
        ])?;
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
            next_at: due.max(now),
        });
    }
    Ok(stored)
}

/// Record what became of a delivery attempt: the command's one row in
/// `deliveries`, made or replaced.
pub(super) fn record_delivery(tx: &Connection, id: i64, update: &DeliveryUpdate) -> Result<(), StoreError> {
    let now = now_ms();
    match update {
        // One machine keeps every command it has.
        DeliveryUpdate::Released => return Ok(()),
        DeliveryUpdate::Delivered { attempts } => tx
            .prepare_cached(
                "INSERT INTO deliveries (id, state, attempts, done_at) VALUES (?1, 'delivered', ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET state = 'delivered', attempts = ?2, done_at = ?3, last_error = NULL",
            )?
            .execute(params![id, attempts, now])?,
        DeliveryUpdate::Retry {
            attempts,
            first_attempt_at,
            next_at,
            error,
        } => tx
            .prepare_cached(
                "INSERT INTO deliveries (id, state, attempts, first_attempt_at, next_at, last_error)
                 VALUES (?1, 'pending', ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET attempts = ?2, first_attempt_at = ?3, next_at = ?4, last_error = ?5",
            )?
            .execute(params![id, attempts, first_attempt_at, next_at, error])?,
        DeliveryUpdate::Superseded => tx
            .prepare_cached(
                "INSERT INTO deliveries (id, state, dead_reason, done_at) VALUES (?1, 'dead', 'superseded', ?2)
                 ON CONFLICT (id) DO UPDATE SET state = 'dead', dead_reason = 'superseded', done_at = ?2",
            )?
            .execute(params![id, now])?,
        DeliveryUpdate::Dead {
            attempts,
            reason,
            error,
        } => tx
            .prepare_cached(
                "INSERT INTO deliveries (id, state, attempts, dead_reason, last_error, done_at)
                 VALUES (?1, 'dead', ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET state = 'dead', attempts = ?2, dead_reason = ?3, last_error = ?4,
                                                done_at = ?5",
            )?
            .execute(params![id, attempts, reason, error, now])?,
    };
    Ok(())
}

/// The pending commands from id `below` on, in order, as
/// [`PendingCommand::from_row`] reads them.
pub(super) const PENDING_COMMANDS: &str = "
    SELECT o.id, o.idempotency_key, o.door, o.command, o.received_at, coalesce(d.attempts, 0),
           d.first_attempt_at, coalesce(d.next_at, max(o.received_at, o.created_at)), o.plugin,
           CASE WHEN d.retried THEN 0 ELSE o.delay_ms END
    FROM outbox o LEFT JOIN deliveries d ON d.id = o.id
    WHERE o.id >= ?1 AND (d.state IS NULL OR d.state = 'pending')
    ORDER BY o.id";

/// The pending events from journal number `below` on, in order: seq, run,
/// event JSON, raw body.
pub(super) const PENDING_EVENTS: &str = "
    SELECT e.seq, e.run, e.event, e.raw FROM events e
    WHERE e.seq >= ?1 AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.seq = e.seq)
    ORDER BY e.seq";
