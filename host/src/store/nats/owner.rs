//! Which node works on which partition. Each partition is owned by one
//! node at a time, by a lease in the key-value bucket `<prefix>_OWNERS`:
//! the key `owner.<partition>` names the node, and only that node pulls
//! the partition's events and commands. The bucket forgets a key that was
//! not renewed for `[store] lease`, so the partitions of a node that died
//! are free again after that long; a node that stops deletes its keys, and
//! the others take them at their next look.
//!
//! Every node also keeps `node.<id>` alive in the bucket. From the nodes it
//! sees, each computes the same even shares (see [`shares`]), claims the
//! free partitions of its own, and hands back the ones of another node's
//! share — so a node that joins or comes back gets its share, and little
//! else moves. A partition nobody claims for two looks is taken by
//! whoever sees it first.
//!
//! A new owner reads the partition's events from the floor the last one
//! kept (see `floor`). It looks at the partition's commands consumer: if
//! the last owner left commands handed out and unacknowledged, or pulls
//! waiting, the consumer is made again from its acknowledged floor, so
//! those commands come first and in order — not after `ack_wait`, behind
//! newer ones of the same door — and none goes to the last owner.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures_util::TryStreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Cluster;
use super::floor::{Floor, Lookup};
use super::held::Held;
use super::leases::Leases;
use super::shares::{node_key, shares};

/// Starts the readers of a partition just taken, which stop when the
/// receiver turns true.
pub(super) type Starter = Box<dyn Fn(u32, &Taken, watch::Receiver<bool>) -> Vec<JoinHandle<()>> + Send + Sync>;

/// A partition just taken: where its events are read from, and the
/// highest command sequence the last owner may have delivered (see
/// [`Cluster::take_over`]).
pub(super) struct Taken {
    pub(super) floor: Arc<Floor>,
    pub(super) lookup: Lookup,
    pub(super) recheck_commands: u64,
}

pub(super) struct Ownership {
    cluster: Cluster,
    kv: kv::Store,
    /// This node's key in the bucket.
    me: String,
    lease: Duration,
    held: Arc<Held>,
    backlog: Arc<AtomicUsize>,
    start: Starter,
    state: tokio::sync::Mutex<State>,
    /// What this node owns now.
    owned: Arc<Leases>,
    /// The floors of what it owns, for `/admin/status`: read without
    /// waiting on a look, which may take seconds while a server is gone.
    floors: std::sync::Mutex<BTreeMap<u32, Arc<Floor>>>,
}

#[derive(Default)]
struct State {
    owned: BTreeMap<u32, Owned>,
    /// Partitions seen free, and how many looks in a row.
    free: HashMap<u32, u32>,
    closed: bool,
}

struct Owned {
    revision: u64,
    /// When the last renewal that was stored was sent.
    renewed: Instant,
    floor: Arc<Floor>,
    stop: watch::Sender<bool>,
    pullers: Vec<JoinHandle<()>>,
}

impl Ownership {
    pub(super) fn new(
        cluster: Cluster,
        kv: kv::Store,
        owned: Arc<Leases>,
        held: Arc<Held>,
        backlog: Arc<AtomicUsize>,
        start: Starter,
    ) -> Ownership {
        let me = node_key(&cluster.settings.node);
        let lease = cluster.settings.lease;
        Ownership {
            cluster,
            kv,
            me,
            lease,
            held,
            backlog,
            start,
            state: Default::default(),
            owned,
            floors: Default::default(),
        }
    }

    /// How often a node renews and looks: often enough that two looks fit
    /// in a lease with room for a slow answer.
    fn every(&self) -> Duration {
        self.lease / 4
    }

    pub(super) fn owns(&self, p: u32) -> bool {
        self.owned.owns(p)
    }

    pub(super) fn keeps(&self, p: u32) -> bool {
        self.owned.keeps(p)
    }

    pub(super) fn owned(&self) -> Vec<u32> {
        self.owned.owned()
    }

    /// The floor of each partition this node owns, and whether it is clean.
    pub(super) fn floors(&self) -> Vec<(u32, u64, bool)> {
        let floors = self.floors.lock().unwrap_or_else(|e| e.into_inner());
        floors
            .iter()
            .map(|(&p, floor)| {
                let (floor, clean) = floor.now();
                (p, floor, clean)
            })
            .collect()
    }

    /// A renewal sent at `renewed` was stored: this node surely owns `p`
    /// for two thirds of a lease from then (the lease lapses a whole lease
    /// after it, and only then may another node take it).
    fn owned_until(&self, p: u32, renewed: Instant) {
        self.owned.until(p, renewed + self.lease * 2 / 3);
    }

    /// Renew, look and balance until `stop` turns true; from then on only
    /// renew what this node owns, pulling no more, until `closed` (the
    /// journal's close gives the leases up once what it holds is written).
    pub(super) async fn run(self: Arc<Self>, stop: watch::Receiver<bool>, mut closed: watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            let result = if *stop.borrow() {
                self.keep().await
            } else {
                self.look().await
            };
            match result {
                Ok(()) => failures = 0,
                Err(error) => {
                    failures += 1;
                    if failures % 10 == 1 {
                        tracing::warn!(%error, "Cannot see the partitions' owners; trying again.");
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.every()) => {}
                _ = closed.wait_for(|closed| *closed) => return,
            }
        }
    }

    /// Stopping: pull no more, leave the shares to the other nodes, keep
    /// the leases while what is held is written.
    async fn keep(&self) -> Result<(), String> {
        let mut state = self.state.lock().await;
        if state.closed {
            return Ok(());
        }
        for owned in state.owned.values() {
            let _ = owned.stop.send(true);
        }
        let _ = self.kv.delete(&self.me).await;
        self.renew(&mut state).await;
        Ok(())
    }

    async fn look(&self) -> Result<(), String> {
        let mut state = self.state.lock().await;
        if state.closed {
            return Ok(());
        }
        // The leases first: a slow or failed look must not cost them.
        self.renew(&mut state).await;
        let bound = self.every();
        let put = self.kv.put(&self.me, self.cluster.settings.node.clone().into());
        tokio::time::timeout(bound, put)
            .await
            .map_err(|_| format!("renewing {}: no answer within {bound:?}", self.me))?
            .map_err(|e| format!("renewing {}: {e}", self.me))?;
        let keys = async {
            self.kv
                .keys()
                .await?
                .try_collect::<Vec<String>>()
                .await
                .map_err(Into::into)
        };
        let keys: Vec<String> = tokio::time::timeout(bound, keys)
            .await
            .map_err(|_| format!("listing the bucket: no answer within {bound:?}"))?
            .map_err(|e: async_nats::Error| e.to_string())?;
        let mut nodes: Vec<&str> = keys
            .iter()
            .filter(|k| k.starts_with("node."))
            .map(String::as_str)
            .collect();
        if !nodes.contains(&self.me.as_str()) {
            nodes.push(&self.me);
        }
        let taken: BTreeSet<u32> = keys
            .iter()
            .filter_map(|k| k.strip_prefix("owner.")?.parse().ok())
            .collect();

        nodes.sort_unstable();
        let shares = shares(&nodes, self.cluster.layout().partitions);
        let mut hand_back = Vec::new();
        let mut claim = Vec::new();
        for (p, share) in (0..).zip(shares) {
            if state.owned.contains_key(&p) {
                if share != self.me {
                    hand_back.push(p);
                }
                continue;
            }
            if taken.contains(&p) {
                state.free.remove(&p);
                continue;
            }
            let looks = state.free.entry(p).or_insert(0);
            *looks += 1;
            if share == self.me || *looks > 2 {
                claim.push(p);
            }
        }
        if !hand_back.is_empty() {
            self.hand_back(&mut state, &hand_back, self.every() / 2).await;
        }
        // Side by side: taking over a consumer is a few round trips to its
        // replicas, and a dead node leaves many partitions at once.
        let claimed = futures_util::future::join_all(claim.into_iter().map(|p| self.claim(p))).await;
        for (p, revision, renewed, taken) in claimed.into_iter().flatten() {
            state.free.remove(&p);
            let (stop, stopping) = watch::channel(false);
            self.owned_until(p, renewed);
            let pullers = (self.start)(p, &taken, stopping);
            self.floors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(p, taken.floor.clone());
            state.owned.insert(
                p,
                Owned {
                    revision,
                    renewed,
                    floor: taken.floor,
                    stop,
                    pullers,
                },
            );
            tracing::info!(partition = p, node = %self.cluster.settings.node, "This node owns a partition.");
        }
        Ok(())
    }

    /// Renew every lease this node holds, all at once, waiting at most
    /// until the next look; one that another node took, or that could not
    /// be renewed for two thirds of a lease, is lost.
    async fn renew(&self, state: &mut State) {
        let bound = self.every();
        let renewals = state.owned.iter().map(|(&p, owned)| async move {
            let sent = Instant::now();
            let update = self.kv.update(owner_key(p), self.me.clone().into(), owned.revision);
            // The floor beside it: how far the next owner may start.
            let (renewed, kept) = tokio::join!(
                tokio::time::timeout(bound, update),
                tokio::time::timeout(bound, self.cluster.keep_floor(p, &owned.floor)),
            );
            if let Ok(Err(error)) = kept {
                tracing::debug!(partition = p, %error, "Keeping the floor failed; trying again.");
            }
            (p, sent, renewed)
        });
        let mut lost = Vec::new();
        for (p, sent, result) in futures_util::future::join_all(renewals).await {
            let Some(owned) = state.owned.get_mut(&p) else {
                continue;
            };
            match result {
                Ok(Ok(revision)) => {
                    owned.revision = revision;
                    owned.renewed = sent;
                    self.owned_until(p, sent);
                }
                Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => lost.push(p),
                failed => {
                    if owned.renewed.elapsed() > self.lease * 2 / 3 {
                        lost.push(p);
                    } else {
                        let error = failed.map_or_else(|_| "no answer".to_string(), |r| format!("{:?}", r.err()));
                        tracing::debug!(partition = p, %error, "Renewing a lease failed; trying again.");
                    }
                }
            }
        }
        for p in lost {
            tracing::warn!(
                partition = p,
                "Lost this node's lease on a partition; another node runs what it held."
            );
            if let Some(owned) = state.owned.remove(&p) {
                let _ = owned.stop.send(true);
            }
            self.forget(p);
        }
    }

    fn forget(&self, p: u32) {
        self.owned.remove(p);
        self.floors.lock().unwrap_or_else(|e| e.into_inner()).remove(&p);
        let abandoned = self.held.abandon(p);
        self.backlog.fetch_sub(abandoned, Ordering::Relaxed);
    }

    /// Take partition `p`'s lease and make its consumers ready; its lease's
    /// revision, when it was taken, and where to read from.
    async fn claim(&self, p: u32) -> Option<(u32, u64, Instant, Taken)> {
        let revision = match self.kv.create(owner_key(p), self.me.clone().into()).await {
            Ok(revision) => revision,
            // Another node was quicker.
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => return None,
            Err(e) => {
                tracing::debug!(partition = p, error = %e, "Claiming a partition failed.");
                return None;
            }
        };
        let renewed = Instant::now();
        match self.cluster.take_over(p).await {
            Ok((recheck_commands, start)) => {
                let taken = Taken {
                    floor: Arc::new(Floor::new(start)),
                    lookup: start.lookup,
                    recheck_commands,
                };
                Some((p, revision, renewed, taken))
            }
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "Cannot take over a partition's consumers; letting it go.");
                let _ = self.kv.delete_expect_revision(owner_key(p), Some(revision)).await;
                None
            }
        }
    }

    /// Stop pulling `partitions`, give what is held of them up to `within`
    /// to be written, and delete their leases for their next owner.
    async fn hand_back(&self, state: &mut State, partitions: &[u32], within: Duration) {
        let mut handed = Vec::new();
        for p in partitions {
            if let Some(owned) = state.owned.remove(p) {
                let _ = owned.stop.send(true);
                handed.push((*p, owned));
            }
        }
        let deadline = tokio::time::Instant::now() + within;
        for (_, owned) in &mut handed {
            for puller in owned.pullers.drain(..) {
                let _ = tokio::time::timeout_at(deadline, puller).await;
            }
        }
        while handed.iter().any(|(p, _)| self.held.holds(*p)) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The floor as it ends, for the next owner to start at: clean when
        // all that was read was written.
        let kept = handed.iter().map(|(p, owned)| async move {
            let keep = self.cluster.keep_floor(*p, &owned.floor);
            if let Ok(Err(error)) = tokio::time::timeout(Duration::from_secs(2), keep).await {
                tracing::warn!(partition = p, %error, "Keeping the floor failed; the next owner looks up what was written.");
            }
        });
        futures_util::future::join_all(kept).await;
        for (p, owned) in handed {
            self.forget(p);
            let _ = self.kv.delete_expect_revision(owner_key(p), Some(owned.revision)).await;
            tracing::info!(partition = p, "Handed a partition back for another node's share.");
        }
    }

    /// Give up every lease and this node's key, once what it held is
    /// written (the journal's close): the others take over at their next
    /// look, not after a lease.
    pub(super) async fn release_all(&self) {
        let mut state = self.state.lock().await;
        state.closed = true;
        let owned: Vec<u32> = state.owned.keys().copied().collect();
        self.hand_back(&mut state, &owned, Duration::ZERO).await;
        let _ = self.kv.delete(&self.me).await;
    }
}

fn owner_key(p: u32) -> String {
    format!("owner.{p}")
}
