//! A plugin's `instances`: how many of its calls may run at once. A call
//! over the limit waits its turn.

use tokio::sync::{Semaphore, SemaphorePermit};

pub struct Slots(Semaphore);

/// A taken slot; dropping it frees it.
pub struct Slot<'a>(#[allow(dead_code)] SemaphorePermit<'a>);

impl Slots {
    pub fn new(count: u32) -> Slots {
        Slots(Semaphore::new(count as usize))
    }

    /// Wait for a free slot and take it.
    pub async fn take(&self) -> Slot<'_> {
        Slot(self.0.acquire().await.expect("plugin slots are never closed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_count_at_once() {
        let slots = Arc::new(Slots::new(2));
        let (running, most) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (slots, running, most) = (slots.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    let _slot = slots.take().await;
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
