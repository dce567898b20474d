//! How far a partition's events are written. Its owner reads them through
//! an ordered consumer — one replica, in memory, without acknowledgements,
//! so that nothing of the reading is replicated — starting above the
//! partition's floor: every event of the partition at or below that
//! `EVENTS` sequence has had its run written. The owner keeps the floor in
//! `META`, at `<prefix>.meta.floor.<p>`, at each renewal of its lease when
//! it moved and when it hands the partition back, so the next owner starts
//! there.
//!
//! A floor kept at a renewal may be behind what its owner wrote since. An
//! owner never reads more than [`WINDOW`] events past the oldest one it has
//! not written, so what it wrote past its floor lies within that many
//! events of the first one without a run: the next owner looks up the run
//! of each event until then and runs only those without one.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::wire::{self, RunMsg};
use super::{Cluster, missing};
use crate::store::StoreError;
use crate::time::now_ms;

/// How many of a partition's events its owner may read past the oldest it
/// has not written: enough that its doors run side by side and its writes
/// overlap, few enough that a hand-over looks up little.
pub(super) const WINDOW: usize = 256;

/// The events of one partition this node has read and not yet written
/// past, while it owns the partition.
pub(super) struct Floor {
    window: Mutex<Window>,
    room: Notify,
}

struct Window {
    /// What was read, oldest first, and whether it is written; the front
    /// is never written (it is dropped and the floor raised instead).
    open: VecDeque<(u64, bool)>,
    floor: u64,
    /// Up to here the last owner may have written past the floor: not
    /// clean until the floor is there.
    inherited: u64,
    /// The floor last kept in `META`, and whether it was clean.
    kept: (u64, bool),
}

impl Floor {
    /// A partition taken at `start`.
    pub(super) fn new(start: Start) -> Floor {
        let inherited = match start.lookup {
            Lookup::None => 0,
            Lookup::Window { through } | Lookup::Through { through } => through,
        };
        Floor {
            window: Mutex::new(Window {
                open: VecDeque::new(),
                floor: start.floor,
                inherited,
                kept: (start.floor, inherited <= start.floor),
            }),
            room: Notify::new(),
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait until the window has room, then count `seq` as read.
    pub(super) async fn admit(&self, seq: u64) {
        loop {
            let room = self.room.notified();
            {
                let mut window = self.window();
                if window.open.len() < WINDOW {
                    window.open.push_back((seq, false));
                    return;
                }
            }
            room.await;
        }
    }

    /// `seq`'s run is written (or it needs none).
    pub(super) fn written(&self, seq: u64) {
        let mut window = self.window();
        let Ok(at) = window.open.binary_search_by_key(&seq, |(s, _)| *s) else {
            return;
        };
        window.open[at].1 = true;
        let mut freed = false;
        while let Some(&(front, true)) = window.open.front() {
            window.floor = front;
            window.open.pop_front();
            freed = true;
        }
        if freed {
            self.room.notify_waiters();
        }
    }

    /// The floor, and whether it is clean: nothing past it was read, nor
    /// may the last owner have written past it.
    pub(super) fn now(&self) -> (u64, bool) {
        let window = self.window();
        (window.floor, window.open.is_empty() && window.floor >= window.inherited)
    }

    /// The floor to keep, if it changed since it was last kept.
    fn to_keep(&self) -> Option<(u64, bool)> {
        let now = self.now();
        (self.window().kept != now).then_some(now)
    }

    fn kept(&self, kept: (u64, bool)) {
        let mut window = self.window();
        if kept.0 >= window.kept.0 {
            window.kept = kept;
        }
    }
}

/// A partition's floor as kept in `META`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct FloorRecord {
    pub(super) floor: u64,
    /// Its owner had read nothing past it: nothing past it is written.
    pub(super) clean: bool,
    pub(super) node: String,
    pub(super) at: i64,
}

/// Where a new owner of a partition starts reading its events, and until
/// where it looks up runs the last owner may have written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Start {
    pub(super) floor: u64,
    pub(super) lookup: Lookup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    /// The last owner handed the partition back with everything it read
    /// written: nothing past the floor is.
    None,
    /// Up to [`WINDOW`] events past the first without a run, and no
    /// further than `through`: what was in the stream when the partition
    /// was taken.
    Window { through: u64 },
    /// Everything up to `through`: a partition last read through a durable
    /// consumer (an earlier version), which had handed out that far.
    Through { through: u64 },
}

/// Decides, event by event, whether to look up a run first.
pub(super) struct Lookups {
    lookup: Lookup,
    /// Events seen since the first one without a run.
    since_unwritten: Option<usize>,
}

impl Lookups {
    pub(super) fn new(lookup: Lookup) -> Lookups {
        Lookups {
            lookup,
            since_unwritten: None,
        }
    }

    /// Whether the run of the event at `seq` may be written already.
    pub(super) fn needed(&self, seq: u64) -> bool {
        match self.lookup {
            Lookup::None => false,
            Lookup::Window { through } => seq <= through && self.since_unwritten.is_none_or(|n| n < WINDOW),
            Lookup::Through { through } => seq <= through,
        }
    }

    /// The event looked up had no run (`false`) or had one.
    pub(super) fn found(&mut self, written: bool) {
        if let Some(n) = &mut self.since_unwritten {
            *n += 1;
        } else if !written {
            self.since_unwritten = Some(1);
        }
    }
}

impl Cluster {
    fn floor_subject(&self, p: u32) -> String {
        format!("{}.meta.floor.{p}", self.layout().prefix)
    }

    /// Partition `p`'s floor as last kept, if it ever was.
    pub(super) async fn read_floor(&self, p: u32) -> Result<Option<FloorRecord>, StoreError> {
        let stream = self.stream("META").await?;
        match stream.get_last_raw_message_by_subject(&self.floor_subject(p)).await {
            Ok(message) => match wire::decode("floor", &message.payload) {
                Ok(record) => Ok(Some(record)),
                // Damaged, or written by hand: as if never kept. The new
                // owner then starts at the beginning and looks up every
                // run, slow but running nothing twice; refusing would
                // leave the partition without an owner for good.
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "A partition's kept floor cannot be read; looking up every event's run.");
                    Ok(None)
                }
            },
            Err(e) if missing(&e) => Ok(None),
            Err(e) => Err(StoreError::Cluster(format!("reading partition {p}'s floor: {e}"))),
        }
    }

    /// Keep partition `p`'s floor in `META`, if it moved.
    pub(super) async fn keep_floor(&self, p: u32, floor: &Floor) -> Result<(), StoreError> {
        let Some((at, clean)) = floor.to_keep() else {
            return Ok(());
        };
        self.write_floor(p, at, clean).await?;
        floor.kept((at, clean));
        Ok(())
    }

    /// Write partition `p`'s floor to `META`.
    pub(super) async fn write_floor(&self, p: u32, at: u64, clean: bool) -> Result<(), StoreError> {
        let record = FloorRecord {
            floor: at,
            clean,
            node: self.settings.node.clone(),
            at: now_ms(),
        };
        let payload = wire::encode("floor", &record)?;
        let ack = self
            .js
            .publish(self.floor_subject(p), payload)
            .await
            .map_err(|e| StoreError::Cluster(format!("keeping partition {p}'s floor: {e}")))?;
        ack.await
            .map_err(|e| StoreError::Cluster(format!("keeping partition {p}'s floor: {e}")))?;
        Ok(())
    }

    /// Whether the event at `seq` (a run of the event journaled at
    /// `origin`) has its run written.
    pub(super) async fn was_run(&self, seq: u64, origin: i64) -> Result<bool, StoreError> {
        let stream = self.stream("RUNS").await?;
        match stream
            .get_last_raw_message_by_subject(&self.layout().run_subject(origin))
            .await
        {
            // Runs of one event are written in order: a later one means
            // this one was, too.
            Ok(message) => Ok(wire::decode::<RunMsg>("run", &message.payload)?.message_seq >= seq),
            Err(e) if missing(&e) => Ok(false),
            Err(e) => Err(StoreError::Cluster(format!("looking up the run of event {seq}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_rises_over_what_is_written_in_order() {
        let floor = Floor::new(clean(10));
        for seq in [12, 15, 16] {
            futures_util::FutureExt::now_or_never(floor.admit(seq)).unwrap();
        }
        assert_eq!(floor.now(), (10, false));
        floor.written(15);
        assert_eq!(floor.now(), (10, false), "12 is not written yet");
        floor.written(12);
        assert_eq!(floor.now(), (15, false));
        floor.written(16);
        assert_eq!(floor.now(), (16, true));
        floor.written(99);
        assert_eq!(floor.now(), (16, true), "what was never read changes nothing");
    }

    #[tokio::test]
    async fn reading_waits_while_the_window_is_full() {
        let floor = std::sync::Arc::new(Floor::new(clean(0)));
        for seq in 1..=WINDOW as u64 {
            floor.admit(seq).await;
        }
        let next = tokio::spawn({
            let floor = floor.clone();
            async move { floor.admit(WINDOW as u64 + 1).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!next.is_finished(), "a full window lets nothing more be read");
        floor.written(2);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!next.is_finished(), "the oldest is still not written");
        floor.written(1);
        next.await.unwrap();
        assert_eq!(floor.now(), (2, false));
    }

    fn clean(floor: u64) -> Start {
        Start {
            floor,
            lookup: Lookup::None,
        }
    }

    #[test]
    fn a_floor_is_kept_once_per_change() {
        let floor = Floor::new(clean(5));
        assert_eq!(floor.to_keep(), None, "as the last owner kept it");
        futures_util::FutureExt::now_or_never(floor.admit(7)).unwrap();
        assert_eq!(floor.to_keep(), Some((5, false)));
        floor.kept((5, false));
        assert_eq!(floor.to_keep(), None);
        floor.written(7);
        assert_eq!(floor.to_keep(), Some((7, true)));
    }

    #[test]
    fn a_floor_taken_from_an_owner_that_died_is_clean_only_past_what_it_may_have_written() {
        let floor = Floor::new(Start {
            floor: 5,
            lookup: Lookup::Window { through: 8 },
        });
        assert_eq!(floor.now(), (5, false));
        for seq in [6, 8] {
            futures_util::FutureExt::now_or_never(floor.admit(seq)).unwrap();
            floor.written(seq);
        }
        assert_eq!(floor.now(), (8, true));
    }

    #[test]
    fn lookups_end_a_window_past_the_first_event_without_a_run() {
        let mut lookups = Lookups::new(Lookup::Window { through: 10_000 });
        assert!(lookups.needed(1));
        lookups.found(true);
        lookups.found(true);
        assert!(lookups.needed(3));
        lookups.found(false);
        for _ in 1..WINDOW {
            assert!(lookups.needed(4));
            lookups.found(true);
        }
        assert!(!lookups.needed(5), "past the window nothing was written");
        assert!(
            !Lookups::new(Lookup::Window { through: 3 }).needed(4),
            "nor past the stream's end when taken"
        );
        assert!(!Lookups::new(Lookup::None).needed(1));
        let through = Lookups::new(Lookup::Through { through: 8 });
        assert!(through.needed(8) && !through.needed(9));
    }
}
