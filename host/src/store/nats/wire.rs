//! What the cluster store's messages carry, as JSON, and the headers that
//! say which run of which event a message is.

use async_nats::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::store::{DeadReason, Step, StoreError};
use crate::wit::sinks::Command;

/// The run of the event (0 as it arrived; a replay's number otherwise).
pub const RUN: &str = "Vestibule-Run";
/// The journal number (`EVENTS` sequence) of the event a replay or a
/// retried dead event runs again.
pub const ORIGIN: &str = "Vestibule-Origin";

/// The run and origin an `EVENTS` message carries; none for an event as it
/// arrived (run 0, its own sequence).
pub fn run_of(headers: Option<&HeaderMap>, own_seq: i64) -> (i64, i64) {
    let number = |name: &str| {
        headers
            .and_then(|h| h.get(name))
            .and_then(|v| v.as_str().parse::<i64>().ok())
    };
    (number(RUN).unwrap_or(0), number(ORIGIN).unwrap_or(own_seq))
}

pub fn run_headers(run: i64, origin: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(RUN, run.to_string().as_str());
    headers.insert(ORIGIN, origin.to_string().as_str());
    headers
}

/// A command waiting in `COMMANDS`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandMsg {
    /// The journal number of its event.
    pub event_seq: i64,
    pub key: String,
    pub plugin: String,
    pub door: String,
    pub command: Command,
    pub delay_ms: u64,
    pub received_at: i64,
    pub created_at: i64,
}

/// Where a command stands, in `STATE` (the last per command).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateMsg {
    pub state: CommandState,
    pub attempts: u32,
    pub first_attempt_at: Option<i64>,
    pub next_at: i64,
    pub error: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandState {
    Retrying,
    Delivered,
    Superseded,
    Dead,
}

impl CommandState {
    /// As `events show` prints a command's state (SQLite's words).
    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Retrying => "pending",
            CommandState::Delivered => "delivered",
            CommandState::Superseded => "superseded",
            CommandState::Dead => "dead",
        }
    }
}

/// One run of an event, in `RUNS`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMsg {
    pub event_seq: i64,
    /// The `EVENTS` message this run was of (the event, a replay or a retry).
    pub message_seq: u64,
    pub run: i64,
    pub steps: Vec<Step>,
    pub commands: Vec<RunCommand>,
    pub processed_at: i64,
    pub node: String,
}

/// A command a run emitted, with where it went in `COMMANDS`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunCommand {
    pub seq: u64,
    pub key: String,
    pub plugin: String,
    pub sink: String,
    pub door: String,
    pub body: String,
    pub due_at: i64,
}

/// A dead-lettered command, in `DEAD`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadCommandMsg {
    pub command_seq: u64,
    pub command: CommandMsg,
    pub attempts: u32,
    pub reason: DeadReason,
    pub error: String,
    pub at: i64,
}

/// An event a plugin stopped, in `DEAD`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadEventMsg {
    pub event_seq: i64,
    pub run: i64,
    pub event: Event,
    pub plugin: String,
    pub reason: String,
    pub error: String,
    pub at: i64,
}

pub fn encode(what: &'static str, value: &impl Serialize) -> Result<bytes::Bytes, StoreError> {
    serde_json::to_vec(value)
        .map(Into::into)
        .map_err(|e| StoreError::Corrupt {
            what,
            error: e.to_string(),
        })
}

pub fn decode<T: serde::de::DeserializeOwned>(what: &'static str, payload: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(payload).map_err(|e| StoreError::Corrupt {
        what,
        error: e.to_string(),
    })
}
