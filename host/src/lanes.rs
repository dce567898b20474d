//! Queues by key, each worked through by one task at a time: what keeps a
//! door's events (or their records) in order while other doors' run beside
//! them. The task for a key exists only while its queue has something.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

pub struct Lanes<K, T> {
    waiting: Arc<Mutex<HashMap<K, VecDeque<T>>>>,
}

impl<K, T> Clone for Lanes<K, T> {
    fn clone(&self) -> Self {
        Lanes {
            waiting: self.waiting.clone(),
        }
    }
}

impl<K, T> Default for Lanes<K, T> {
    fn default() -> Self {
        Lanes {
            waiting: Arc::default(),
        }
    }
}

impl<K: Eq + Hash, T> Lanes<K, T> {
    /// Queue `item` behind the others of `key`. True when `key` had no
    /// queue: the caller starts the task that works it, which takes items
    /// with [`Lanes::next`] until it gets none.
    #[must_use]
    pub fn push(&self, key: K, item: T) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        match waiting.get_mut(&key) {
            Some(queue) => {
                queue.push_back(item);
                false
            }
            None => {
                waiting.insert(key, VecDeque::from([item]));
                true
            }
        }
    }

    /// The next item of `key`; none when its queue is empty, which then
    /// ends the lane (the next push starts a new task).
    pub fn next(&self, key: &K) -> Option<T> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let next = waiting.get_mut(key).and_then(VecDeque::pop_front);
        if next.is_none() {
            waiting.remove(key);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_starts_once_and_ends_when_empty() {
        let lanes = Lanes::default();
        assert!(lanes.push("a", 1));
        assert!(!lanes.push("a", 2));
        assert!(lanes.push("b", 3));
        assert_eq!(lanes.next(&"a"), Some(1));
        assert_eq!(lanes.next(&"a"), Some(2));
        assert_eq!(lanes.next(&"a"), None);
        // Ended: the next item needs a task again.
        assert!(lanes.push("a", 4));
        assert_eq!(lanes.next(&"b"), Some(3));
    }
}
