//! The names of the streams, subjects and consumers, and how an event or a
//! command is assigned its partition: the same on every node.

use sha2::{Digest, Sha256};

/// The names of the streams, subjects and consumers.
#[derive(Debug, Clone)]
pub struct Layout {
    pub prefix: String,
    pub partitions: u32,
}

impl Layout {
    pub fn stream(&self, which: &str) -> String {
        format!("{}_{which}", self.prefix)
    }

    fn partition(&self, parts: &[&str]) -> u32 {
        // A hash every node computes alike (std's is seeded per process).
        let digest = hash(parts);
        let n = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        (n % u64::from(self.partitions)) as u32
    }

    /// An event's subject: its partition, by (source, door), then its id,
    /// hashed, so that `events show ID` finds it without reading the stream.
    pub fn event_subject(&self, source: &str, lane: &str, id: &str) -> String {
        format!(
            "{}.events.{}.{}",
            self.prefix,
            self.partition(&[source, lane]),
            Self::id_token(id)
        )
    }

    /// The subjects an event with `id` may be on, in any partition.
    pub fn event_id_subjects(&self, id: &str) -> String {
        format!("{}.events.*.{}", self.prefix, Self::id_token(id))
    }

    /// Partition `p`'s events: those with an id token, and those an
    /// earlier version journaled without one.
    pub fn partition_events(&self, p: u32) -> Vec<String> {
        vec![
            format!("{}.events.{p}.*", self.prefix),
            format!("{}.events.{p}", self.prefix),
        ]
    }

    fn id_token(id: &str) -> String {
        hex::encode(&hash(&[id])[..10])
    }

    pub fn command_subject(&self, sink: &str, door: &str) -> String {
        format!("{}.commands.{}", self.prefix, self.partition(&[sink, door]))
    }

    /// One subject per (plugin, sink, door): the newest message on it is
    /// the delayed command that replaced the others.
    pub fn delayed_subject(&self, plugin: &str, sink: &str, door: &str) -> String {
        format!(
            "{}.delayed.{}",
            self.prefix,
            hex::encode(&hash(&[plugin, sink, door])[..12])
        )
    }

    /// Where the newest delayed command of a (plugin, sink, door) is
    /// named: the commands stream is a work queue, so a later command that
    /// was already sent is no longer there to be found.
    pub fn slot_subject(&self, plugin: &str, sink: &str, door: &str) -> String {
        format!(
            "{}.slot.{}",
            self.prefix,
            hex::encode(&hash(&[plugin, sink, door])[..12])
        )
    }

    pub fn run_subject(&self, event_seq: i64) -> String {
        format!("{}.runs.{event_seq}", self.prefix)
    }

    pub fn state_subject(&self, command_seq: u64) -> String {
        format!("{}.state.{command_seq}", self.prefix)
    }

    pub fn dead_command_subject(&self, command_seq: u64) -> String {
        format!("{}.dead.commands.{command_seq}", self.prefix)
    }

    pub fn dead_event_subject(&self, event_seq: i64) -> String {
        format!("{}.dead.events.{event_seq}", self.prefix)
    }

    pub(super) fn id_key_subject(&self) -> String {
        format!("{}.meta.id-key", self.prefix)
    }

    /// The consumer of event partition `p`, of command partition `p`, and
    /// of the delayed commands.
    pub fn event_consumer(p: u32) -> String {
        format!("events-{p}")
    }
    pub fn command_consumer(p: u32) -> String {
        format!("commands-{p}")
    }
    pub const DELAYED_CONSUMER: &str = "delayed";

    /// The `Nats-Msg-Id` of an event: its (source, event id), hashed so that
    /// no vendor's id can break the header.
    pub fn event_msg_id(source: &str, event_id: &str) -> String {
        hex::encode(&hash(&[source, event_id])[..16])
    }
}

pub(super) fn hash(parts: &[&str]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().into()
}
