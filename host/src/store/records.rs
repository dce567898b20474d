//! What goes in and out of the store.

use rusqlite::Row;
use serde::{Deserialize, Serialize};

use super::outcomes::{DeadReason, StepResult};
use crate::event::Event;
use crate::wit::sinks::Command;

/// A journaled event on its way to the pipeline.
#[derive(Debug)]
pub struct Queued {
    /// Its place in the journal.
    pub seq: i64,
    /// 0 as it arrived, n for its n-th replay.
    pub run: i64,
    pub event: Event,
}

/// What one plugin did with one event, as `vestibule events show` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub plugin: String,
    pub result: StepResult,
    /// How long the call took (µs); absent where the plugin was not called
    /// (suspended) and in outcomes an earlier release wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micros: Option<u64>,
}

/// One run of an event as the journal holds it: the row, the event's JSON
/// and the commands the run emitted.
pub type EventRun = (EventRow, String, Vec<CommandRow>);

/// A command to store with its event's outcome.
#[derive(Debug, Clone)]
pub struct NewCommand {
    pub plugin: String,
    /// Its place among the commands this plugin emitted for this event.
    pub index: usize,
    pub key: String,
    pub door: String,
    pub command: Command,
    /// Due this long after the event was received (`send-later`).
    pub delay_ms: u64,
}

/// A stored command waiting for delivery.
#[derive(Debug, Clone)]
pub struct PendingCommand {
    pub id: i64,
    pub key: String,
    /// The action plugin that asked for it.
    pub plugin: String,
    pub door: String,
    pub command: Command,
    /// How long after its event it was asked to go (`send-later`); 0 once
    /// a dead letter is retried.
    pub delay_ms: u64,
    /// When its event arrived (ms): `max_age` counts from here.
    pub received_at: i64,
    pub attempts: u32,
    pub first_attempt_at: Option<i64>,
    /// Not before this time (ms).
    pub next_at: i64,
}

impl PendingCommand {
    /// Whether it was asked for with a delay (`send-later`) and never tried:
    /// it waits on its own until due, not in its lane.
    pub fn delayed(&self) -> bool {
        self.delay_ms > 0 && self.attempts == 0
    }

    /// `from_row` reads: id, idempotency key, door, command, due (as
    /// `received_at`), attempts, first attempt, next attempt, plugin, delay.
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<PendingCommand> {
        let json: String = row.get(3)?;
        let command = serde_json::from_str(&json)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e)))?;
        Ok(PendingCommand {
            id: row.get(0)?,
            key: row.get(1)?,
            door: row.get(2)?,
            command,
            received_at: row.get(4)?,
            attempts: row.get(5)?,
            first_attempt_at: row.get(6)?,
            next_at: row.get(7)?,
            plugin: row.get(8)?,
            delay_ms: row.get::<_, i64>(9)?.max(0) as u64,
        })
    }
}

/// What became of one delivery attempt.
#[derive(Debug, Clone)]
pub enum DeliveryUpdate {
    Delivered {
        attempts: u32,
    },
    /// Failed; the next attempt is at `next_at`.
    Retry {
        attempts: u32,
        first_attempt_at: i64,
        next_at: i64,
        error: String,
    },
    /// A later delayed command from the same plugin to the same sink about
    /// the same door replaced it before it was due.
    Superseded,
    /// Given up.
    Dead {
        attempts: u32,
        reason: DeadReason,
        error: String,
    },
    /// No longer this node's to deliver: its partition went to another
    /// node, which goes on with it. Nothing is recorded.
    Released,
}

/// Why a plugin stopped an event (`on_error = "dead-letter"`).
#[derive(Debug, Clone)]
pub struct DeadEvent {
    pub plugin: String,
    /// `timeout`, `memory`, `trap`, `output_too_large`, `sink_refused`, `error`, `suspended`.
    pub reason: &'static str,
    pub error: String,
}

/// A dead-lettered event as `vestibule dead-letters list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadEventRow {
    pub seq: i64,
    pub source: String,
    pub kind: String,
    pub door: String,
    pub plugin: String,
    pub reason: String,
    pub error: String,
    pub at: i64,
}

impl DeadEventRow {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<DeadEventRow> {
        Ok(DeadEventRow {
            seq: row.get(0)?,
            source: row.get(1)?,
            kind: row.get(2)?,
            door: row.get(3)?,
            plugin: row.get(4)?,
            reason: row.get(5)?,
            error: row.get(6)?,
            at: row.get(7)?,
        })
    }
}

/// An event as `vestibule events list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub seq: i64,
    pub source: String,
    pub event_id: String,
    pub run: i64,
    pub kind: String,
    pub door: String,
    pub received_at: i64,
    pub state: String,
    pub steps: Vec<Step>,
}

impl EventRow {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<EventRow> {
        let outcome: Option<String> = row.get(8)?;
        Ok(EventRow {
            seq: row.get(0)?,
            source: row.get(1)?,
            event_id: row.get(2)?,
            run: row.get(3)?,
            kind: row.get(4)?,
            door: row.get(5)?,
            received_at: row.get(6)?,
            state: row.get(7)?,
            // Written by this program; an unreadable one shows as no steps
            // rather than hiding the event.
            steps: outcome
                .and_then(|json| serde_json::from_str(&json).ok())
                .unwrap_or_default(),
        })
    }
}

/// A stored command as `vestibule dead-letters list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CommandRow {
    pub id: i64,
    pub seq: i64,
    pub plugin: String,
    pub sink: String,
    pub door: String,
    pub idempotency_key: String,
    pub body: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub dead_reason: Option<DeadReason>,
    pub created_at: i64,
    pub done_at: Option<i64>,
    /// When it is due (ms): the event's arrival, plus its delay. A sink's
    /// `max_age` counts from here.
    pub due_at: i64,
}

impl CommandRow {
    pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<CommandRow> {
        let command: String = row.get(6)?;
        let body = serde_json::from_str::<Command>(&command)
            .map(|c| c.body)
            .unwrap_or(command);
        Ok(CommandRow {
            id: row.get(0)?,
            seq: row.get(1)?,
            plugin: row.get(2)?,
            sink: row.get(3)?,
            door: row.get(4)?,
            idempotency_key: row.get(5)?,
            body,
            state: row.get(7)?,
            attempts: row.get(8)?,
            last_error: row.get(9)?,
            dead_reason: row.get(10)?,
            created_at: row.get(11)?,
            done_at: row.get(12)?,
            due_at: row.get(13)?,
        })
    }
}

/// What became of an event handed to [`Journal::append`](super::Journal::append).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored; it will be processed.
    Accepted { seq: i64 },
    /// Its (source, event id) was accepted within the deduplication window.
    Duplicate,
}

/// The outcome of running one event through the pipeline.
#[derive(Debug, Clone)]
pub struct Processed {
    pub seq: i64,
    pub steps: Vec<Step>,
    pub commands: Vec<NewCommand>,
    /// A plugin stopped the event: it is kept as a dead letter.
    pub dead_letter: Option<DeadEvent>,
    /// When the event arrived (ms).
    pub received_at: i64,
}

impl Processed {
    /// How many rows recording it writes: its outcome, a dead letter, each
    /// command.
    pub fn writes(&self) -> usize {
        1 + usize::from(self.dead_letter.is_some()) + self.commands.len()
    }
}
