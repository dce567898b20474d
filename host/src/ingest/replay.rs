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

type Key = [u8; 32];

#[derive(Default)]
pub struct ReplayGuard {
    inner: Mutex<Seen>,
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
        let seen = self.lock();
        seen.until.get(key).is_some_and(|until| *until > now_ms())
    }

    /// Remember `key`, accepted now, until `until` (ms).
    pub fn accepted(&self, key: Key, until: i64) {
        let mut seen = self.lock();
        let now = now_ms();
        while let Some((expires, old)) = seen.order.front().copied() {
            if expires > now && seen.order.len() < CAPACITY {
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
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
}
