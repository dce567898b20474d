//! Until when this node surely owns each of its partitions: the time
//! fence every read and write of a partition checks (see `owner`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// Until when this node surely owns each of its partitions. Past that, a
/// lease not renewed may be another node's soon: nothing more of the
/// partition is pulled or written, whatever a renewal still on its way
/// answers.
#[derive(Default)]
pub(super) struct Leases(Mutex<BTreeMap<u32, Instant>>);

impl Leases {
    /// Whether `p` is still this node's: not lost, not handed back. It may
    /// not be surely owned at this moment (see [`Leases::owns`]) while a
    /// renewal is late.
    pub(super) fn keeps(&self, p: u32) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&p)
    }

    /// Whether this node surely owns `p` now: work on it may go on.
    pub(super) fn owns(&self, p: u32) -> bool {
        let owned = self.0.lock().unwrap_or_else(|e| e.into_inner());
        owned.get(&p).is_some_and(|until| Instant::now() < *until)
    }

    pub(super) fn owned(&self) -> Vec<u32> {
        let owned = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        owned
            .iter()
            .filter(|(_, until)| now < **until)
            .map(|(p, _)| *p)
            .collect()
    }

    pub(super) fn until(&self, p: u32, until: Instant) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(p, until);
    }

    pub(super) fn remove(&self, p: u32) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&p);
    }
}
