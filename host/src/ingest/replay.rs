//! Replay protection for timestamped signatures (UniFi Access, Verkada,
//! Standard Webhooks): a signed request accepted once is refused as a
//! replay if it comes again while its timestamp is still within tolerance
//! (after that, the timestamp check refuses it). Only accepted requests are
//! remembered, so a refused replay never loses an event; vendors that
//! retry sign each retry anew.
//!
//! A request is known by its source, signed time and body: a signature is a
//! function of those, so this is the same test as "the same signature".

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::time::now_ms;

/// Requests remembered at most; past it the oldest are forgotten (the
/// deduplication of event ids still stops them being processed twice).
const CAPACITY: usize = 200_000;
/// Kept in this many parts, by the key's first byte, each with its own
/// lock and its share of [`CAPACITY`]: requests on different connections
/// rarely wait for each other, and growing one part (which moves all it
/// holds) keeps every other request waiting briefly, not for milliseconds.
const SHARDS: usize = 64;

type Key = [u8; 32];

pub struct ReplayGuard {
    shards: Vec<Mutex<Seen>>,
}

impl Default for ReplayGuard {
    fn default() -> ReplayGuard {
        ReplayGuard {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

#[derive(Default)]
struct Seen {
    /// Until when (ms) each is remembered.
    until: HashMap<Key, i64>,
    /// In the order remembered, to forget the oldest first.
    order: VecDeque<(i64, Key)>,
}

impl ReplayGuard {
    /// The key of a request to `source`, signed at `signed_at`, with `body`.
    pub fn key(source: &str, signed_at: i64, body: &[u8]) -> Key {
        let mut hash = Sha256::new();
        hash.update((source.len() as u64).to_le_bytes());
        hash.update(source);
        hash.update(signed_at.to_le_bytes());
        hash.update(body);
        hash.finalize().into()
    }

    /// Whether `key` was accepted before and is still remembered.
    pub fn seen(&self, key: &Key) -> bool {
        let seen = self.lock(key);
        seen.until.get(key).is_some_and(|until| *until > now_ms())
    }

    /// Remember `key`, accepted now, until `until` (ms).
    pub fn accepted(&self, key: Key, until: i64) {
        let mut seen = self.lock(&key);
        let now = now_ms();
        while let Some((expires, old)) = seen.order.front().copied() {
            if expires > now && seen.order.len() < CAPACITY / SHARDS {
                break;
            }
            seen.order.pop_front();
            if seen.until.get(&old) == Some(&expires) {
                seen.until.remove(&old);
            }
        }
        seen.until.insert(key, until);
        seen.order.push_back((until, key));
    }

    /// The part `key` is kept in: keys are SHA-256 digests, so their first
    /// byte spreads them evenly.
    fn lock(&self, key: &Key) -> std::sync::MutexGuard<'_, Seen> {
        self.shards[key[0] as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_a_replay_only_while_remembered() {
        let guard = ReplayGuard::default();
        let key = ReplayGuard::key("office", 1_700_000_000, b"{}");
        assert!(!guard.seen(&key));
        guard.accepted(key, now_ms() + 60_000);
        assert!(guard.seen(&key));
        assert!(
            !guard.seen(&ReplayGuard::key("office", 1_700_000_001, b"{}")),
            "another time"
        );
        assert!(
            !guard.seen(&ReplayGuard::key("lobby", 1_700_000_000, b"{}")),
            "another source"
        );

        let stale = ReplayGuard::key("office", 1, b"{}");
        guard.accepted(stale, now_ms() - 1);
        assert!(!guard.seen(&stale), "past its window");
    }

    #[test]
    fn at_most_capacity_requests_are_remembered_the_oldest_forgotten() {
        let guard = ReplayGuard::default();
        let until = now_ms() + 600_000;
        let keys: Vec<Key> = (0..CAPACITY as i64 + 20_000)
            .map(|t| ReplayGuard::key("office", t, b"{}"))
            .collect();
        for key in &keys {
            guard.accepted(*key, until);
        }
        let remembered: usize = guard.shards.iter().map(|s| s.lock().unwrap().order.len()).sum();
        assert!(remembered <= CAPACITY, "{remembered} remembered");
        assert!(remembered > CAPACITY - SHARDS, "{remembered} remembered");
        assert!(guard.seen(keys.last().unwrap()), "the newest is remembered");
        assert!(!guard.seen(&keys[0]), "the oldest is forgotten");
    }
}
