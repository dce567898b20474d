//! The events accepted within the deduplication window, in memory: what the
//! duplicate check of every append looks up. An index on disk keyed by the
//! event id would put each new id on a random page of its own, and every
//! commit would write those pages to the WAL again (4 KiB an event); this
//! costs 25 to 50 bytes of memory an event instead, and is read back at
//! start from `events_accepted`, which grows at its end.
//!
//! Entries are keyed by a hash of the source and the event id; a match is
//! confirmed against the stored event, so a collision cannot make an event
//! a duplicate. What a batch adds is taken back if its commit fails.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::migrate::id_hash;

/// How often entries past the window are forgotten.
const SWEEP_EVERY_MS: i64 = 60_000;
/// The entries are kept in this many maps, by the top bits of their key, so
/// that growing one (which moves all it holds) or sweeping one stays short:
/// both happen on the writer, between commits.
const SHARDS: usize = 64;

pub(super) struct Seen {
    /// Source and event id, hashed → (journal number, accepted at, ms), in
    /// [`SHARDS`] maps.
    recent: Vec<HashMap<u64, (i64, i64)>>,
    window_ms: i64,
    /// Each source's part of the key, hashed once.
    sources: HashMap<String, u64>,
    /// What this batch added, and what each replaced: undone if its commit
    /// fails.
    batch: Vec<(u64, Option<(i64, i64)>)>,
    /// When a map was last swept, and which is next.
    swept_at: i64,
    sweep_next: usize,
}

impl Seen {
    /// The events of the last `window_ms` before `now`, from the journal.
    pub(super) fn load(conn: &Connection, window_ms: i64, now: i64) -> rusqlite::Result<Seen> {
        let mut seen = Seen {
            recent: (0..SHARDS).map(|_| HashMap::new()).collect(),
            window_ms,
            sources: HashMap::new(),
            batch: Vec::new(),
            swept_at: now,
            sweep_next: 0,
        };
        let mut statement = conn.prepare(
            "SELECT seq, id_hash, source, accepted_at FROM events INDEXED BY events_accepted
             WHERE accepted_at > ?1 AND run = 0 ORDER BY accepted_at",
        )?;
        let mut rows = statement.query([now - window_ms])?;
        while let Some(row) = rows.next()? {
            let source: String = row.get(2)?;
            let key = seen.key(row.get(1)?, &source);
            seen.shard(key).insert(key, (row.get(0)?, row.get(3)?));
        }
        Ok(seen)
    }

    /// Whether `event_id` of `source` was accepted within the window
    /// before `now`.
    pub(super) fn duplicate(
        &mut self,
        conn: &Connection,
        source: &str,
        event_id: &str,
        now: i64,
    ) -> rusqlite::Result<bool> {
        let key = self.key(id_hash(event_id), source);
        let Some(&(seq, at)) = self.shard(key).get(&key) else {
            return Ok(false);
        };
        if at <= now - self.window_ms {
            return Ok(false);
        }
        let same = conn
            .prepare_cached("SELECT 1 FROM events WHERE seq = ?1 AND source = ?2 AND event_id = ?3")?
            .query_row(params![seq, source, event_id], |_| Ok(()))
            .optional()?;
        Ok(same.is_some())
    }

    /// `event_id` of `source` was stored as `seq` at `now`, in this batch.
    pub(super) fn accepted(&mut self, source: &str, event_id: &str, seq: i64, now: i64) {
        let key = self.key(id_hash(event_id), source);
        let before = self.shard(key).insert(key, (seq, now));
        self.batch.push((key, before));
    }

    /// The batch committed: keep what it added; forget what is past the
    /// window, one map at a time, each about once a [`SWEEP_EVERY_MS`].
    pub(super) fn committed(&mut self, now: i64) {
        self.batch.clear();
        if now - self.swept_at >= SWEEP_EVERY_MS / SHARDS as i64 {
            self.swept_at = now;
            let oldest = now - self.window_ms;
            self.recent[self.sweep_next].retain(|_, (_, at)| *at > oldest);
            self.sweep_next = (self.sweep_next + 1) % SHARDS;
        }
    }

    /// The batch did not commit: what it added was never stored.
    pub(super) fn rolled_back(&mut self) {
        for (key, before) in std::mem::take(&mut self.batch).into_iter().rev() {
            let shard = self.shard(key);
            match before {
                Some(value) => shard.insert(key, value),
                None => shard.remove(&key),
            };
        }
    }

    /// A reload changed `dedup_window`.
    pub(super) fn set_window(&mut self, window_ms: i64) {
        self.window_ms = window_ms;
    }

    /// The map `key` is kept in: keys are hashes, so their top bits spread
    /// them evenly.
    fn shard(&mut self, key: u64) -> &mut HashMap<u64, (i64, i64)> {
        &mut self.recent[(key >> (64 - SHARDS.trailing_zeros())) as usize]
    }

    /// How many entries are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.recent.iter().map(HashMap::len).sum()
    }

    fn key(&mut self, id_hash: i64, source: &str) -> u64 {
        let source_hash = match self.sources.get(source) {
            Some(hash) => *hash,
            None => {
                let digest = Sha256::digest(source.as_bytes());
                let hash = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
                self.sources.insert(source.to_string(), hash);
                hash
            }
        };
        id_hash as u64 ^ source_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Appended;
    use crate::store::sqlite::Store;
    use crate::store::sqlite::sql::{append, json_without_raw};

    fn event(source: &str, id: &str) -> crate::event::Event {
        let mut event: crate::event::Event = serde_json::from_str(include_str!(
            "../../../../examples/events/normalized/front-door-granted.json"
        ))
        .unwrap();
        event.source = source.into();
        event.id = id.into();
        event
    }

    fn store(conn: &Connection, seen: &mut Seen, source: &str, id: &str) -> Appended {
        let mut event = event(source, id);
        let json = json_without_raw(&mut event).unwrap();
        let appended = append(conn, seen, &event, &json).unwrap();
        seen.committed(crate::time::now_ms());
        appended
    }

    #[test]
    fn a_repeat_is_found_after_a_restart_and_not_after_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::time::now_ms();
        {
            let store_ = Store::open(dir.path()).unwrap();
            let mut seen = Seen::load(&store_.conn, 60_000, now).unwrap();
            assert!(matches!(
                store(&store_.conn, &mut seen, "office", "e-1"),
                Appended::Accepted { .. }
            ));
            assert_eq!(store(&store_.conn, &mut seen, "office", "e-1"), Appended::Duplicate);
            // Another source may use the same id for another event.
            assert!(matches!(
                store(&store_.conn, &mut seen, "garage", "e-1"),
                Appended::Accepted { .. }
            ));
        }
        let store_ = Store::open(dir.path()).unwrap();
        let mut seen = Seen::load(&store_.conn, 60_000, crate::time::now_ms()).unwrap();
        assert_eq!(store(&store_.conn, &mut seen, "office", "e-1"), Appended::Duplicate);
        assert_eq!(store(&store_.conn, &mut seen, "garage", "e-1"), Appended::Duplicate);
        // Past the window, the same id is a new event.
        let mut later = Seen::load(&store_.conn, 60_000, crate::time::now_ms() + 120_000).unwrap();
        assert!(later.len() == 0, "nothing of the last minute is loaded a minute later");
        assert!(
            !later
                .duplicate(&store_.conn, "office", "e-1", crate::time::now_ms() + 120_000)
                .unwrap()
        );
    }

    #[test]
    fn what_is_past_the_window_is_forgotten_a_map_at_a_time() {
        let store_ = Store::memory().unwrap();
        let now = crate::time::now_ms();
        let mut seen = Seen::load(&store_.conn, 60_000, now).unwrap();
        for seq in 0..1000 {
            seen.accepted("office", &format!("old-{seq}"), seq, now);
        }
        seen.committed(now);
        let later = now + 30_000;
        seen.accepted("office", "recent", 1000, later);
        seen.committed(later);
        assert_eq!(seen.len(), 1001, "nothing is past the window yet");
        // Each commit at least a step apart sweeps one map: after a round,
        // all of them.
        let step = SWEEP_EVERY_MS / SHARDS as i64;
        let mut at = now + 60_000 + step;
        seen.committed(at);
        let after_one = seen.len();
        assert!(
            after_one < 1001 && after_one > 900,
            "one commit forgets one map's share, not all: {after_one} left"
        );
        for _ in 1..SHARDS {
            at += step;
            seen.committed(at);
        }
        assert_eq!(seen.len(), 1, "only the one within the window is kept");
        assert!(!seen.duplicate(&store_.conn, "office", "old-7", at).unwrap());
    }

    #[test]
    fn what_a_failed_commit_added_is_taken_back() {
        let store_ = Store::memory().unwrap();
        let mut seen = Seen::load(&store_.conn, 60_000, crate::time::now_ms()).unwrap();
        let now = crate::time::now_ms();
        seen.accepted("office", "kept", 1, now);
        seen.committed(now);
        seen.accepted("office", "lost", 2, now);
        seen.accepted("office", "kept", 3, now);
        seen.rolled_back();
        let key = |seen: &mut Seen, id| seen.key(id_hash(id), "office");
        let (lost, kept) = (key(&mut seen, "lost"), key(&mut seen, "kept"));
        assert_eq!(
            seen.shard(lost).get(&lost),
            None,
            "the vendor's retry is not a duplicate"
        );
        assert_eq!(
            seen.shard(kept).get(&kept),
            Some(&(1, now)),
            "the committed one stays as it was"
        );
    }
}
