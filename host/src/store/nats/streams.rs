//! The streams and consumers the cluster store keeps: what it wants of
//! each, made or brought to that at every node's start, and checked by
//! `vestibule check`.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};

use super::floor::{Lookup, Start};
use super::{Cluster, Layout};
use crate::store::StoreError;

/// How delayed commands may wait at once, cluster-wide.
const DELAYED_IN_FLIGHT: i64 = 100_000;

/// How many of a partition's commands its owner may hold unacknowledged:
/// enough that its doors' deliveries overlap, few enough that a hand-over
/// reads little state again.
const PARTITION_IN_FLIGHT: i64 = 256;

impl Cluster {
    /// The streams the store keeps, with the settings it wants.
    pub fn wanted_streams(&self) -> Vec<stream::Config> {
        let s = &self.settings;
        let layout = &s.layout;
        let prefix = &layout.prefix;
        let base = |name: &str, subjects: Vec<String>| stream::Config {
            name: layout.stream(name),
            subjects,
            num_replicas: s.replicas,
            storage: stream::StorageType::File,
            // Replicated, and the leader answers reads; no direct gets from
            // followers, so what the CLI reads is never behind.
            ..Default::default()
        };
        let two_minutes = Duration::from_secs(120);
        vec![
            stream::Config {
                max_age: s.retention,
                duplicate_window: s.dedup_window,
                description: Some("Vestibule: accepted events".into()),
                ..base("EVENTS", vec![format!("{prefix}.events.>")])
            },
            stream::Config {
                max_age: s.retention,
                duplicate_window: two_minutes.min(s.retention),
                description: Some("Vestibule: what each run of an event did".into()),
                ..base("RUNS", vec![format!("{prefix}.runs.*")])
            },
            stream::Config {
                retention: stream::RetentionPolicy::WorkQueue,
                duplicate_window: s.dedup_window,
                description: Some("Vestibule: commands to deliver".into()),
                ..base(
                    "COMMANDS",
                    vec![format!("{prefix}.commands.*"), format!("{prefix}.delayed.*")],
                )
            },
            stream::Config {
                max_age: s.retention,
                max_messages_per_subject: 1,
                duplicate_window: two_minutes.min(s.retention),
                description: Some(
                    "Vestibule: the attempts at each command, the newest delayed one of each slot".into(),
                ),
                ..base("STATE", vec![format!("{prefix}.state.*"), format!("{prefix}.slot.*")])
            },
            stream::Config {
                duplicate_window: two_minutes,
                description: Some("Vestibule: dead letters".into()),
                ..base(
                    "DEAD",
                    vec![format!("{prefix}.dead.commands.*"), format!("{prefix}.dead.events.*")],
                )
            },
            stream::Config {
                max_messages_per_subject: 1,
                duplicate_window: two_minutes,
                description: Some("Vestibule: keys the nodes share".into()),
                ..base("META", vec![format!("{prefix}.meta.>")])
            },
        ]
    }

    /// The durable consumers the nodes pull from, by stream. (A partition's
    /// events are read by an ordered consumer its owner makes; see `floor`.)
    pub fn wanted_consumers(&self) -> Vec<(String, consumer::pull::Config)> {
        let layout = &self.settings.layout;
        let mut wanted: Vec<_> = (0..layout.partitions).map(|p| self.commands_consumer(p)).collect();
        wanted.push((
            layout.stream("COMMANDS"),
            consumer::pull::Config {
                max_ack_pending: DELAYED_IN_FLIGHT,
                ..self.consumer(Layout::DELAYED_CONSUMER.into(), format!("{}.delayed.*", layout.prefix))
            },
        ));
        wanted
    }

    /// The consumer of partition `p`'s commands, pulled only by the node
    /// that owns it.
    fn commands_consumer(&self, p: u32) -> (String, consumer::pull::Config) {
        let layout = &self.settings.layout;
        (
            layout.stream("COMMANDS"),
            self.consumer(Layout::command_consumer(p), format!("{}.commands.{p}", layout.prefix)),
        )
    }

    fn consumer(&self, name: String, filter: String) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(name),
            filter_subject: filter,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.settings.ack_wait,
            max_deliver: -1,
            max_ack_pending: PARTITION_IN_FLIGHT,
            num_replicas: self.settings.replicas,
            ..Default::default()
        }
    }

    /// The bucket of the partitions' leases (see `owner`).
    fn owners_config(&self) -> kv::Config {
        kv::Config {
            bucket: self.layout().stream("OWNERS"),
            description: "Vestibule: which node owns which partition".into(),
            history: 1,
            max_age: self.settings.lease,
            num_replicas: self.settings.replicas,
            storage: stream::StorageType::File,
            ..Default::default()
        }
    }

    pub(super) async fn owners(&self) -> Result<kv::Store, StoreError> {
        let bucket = self.layout().stream("OWNERS");
        self.js
            .get_key_value(&bucket)
            .await
            .map_err(|e| StoreError::Cluster(format!("bucket {bucket}: {e}")))
    }

    /// Create the streams and consumers, or bring their settings to what
    /// the config asks for. Every node does this at start; JetStream makes
    /// it idempotent.
    pub async fn ensure(&self) -> Result<(), StoreError> {
        for config in self.wanted_streams() {
            let name = config.name.clone();
            self.js
                .create_or_update_stream(config)
                .await
                .map_err(|e| StoreError::Cluster(format!("stream {name}: {e}")))?;
        }
        let owners = self.owners_config();
        let bucket = owners.bucket.clone();
        self.js
            .create_or_update_key_value(owners)
            .await
            .map_err(|e| StoreError::Cluster(format!("bucket {bucket}: {e}")))?;
        for (stream, mut config) in self.wanted_consumers() {
            let name = config.durable_name.clone().unwrap_or_default();
            let handle = self
                .js
                .get_stream_no_info(&stream)
                .await
                .map_err(|e| StoreError::Cluster(format!("stream {stream}: {e}")))?;
            // A partition's consumer made again by a new owner starts where
            // the last one's acknowledgements ended; that start stays.
            if let Ok(info) = handle.consumer_info(&name).await {
                config.deliver_policy = info.config.deliver_policy;
            }
            handle
                .create_consumer(config)
                .await
                .map_err(|e| StoreError::Cluster(format!("consumer {name} on {stream}: {e}")))?;
        }
        Ok(())
    }

    /// Make partition `p` ready for a new owner. Its commands consumer, if
    /// it still has commands handed out and unacknowledged (its last owner
    /// died or let go mid-way), or pulls of the last owner waiting, is made
    /// again from its acknowledged floor, so that those come first, in
    /// order, and no later one goes to the last owner. Returns the highest
    /// command sequence the last owner was handed (those may be delivered
    /// already, so their state is read before they are tried), and where
    /// to read the partition's events from.
    pub(super) async fn take_over(&self, p: u32) -> Result<(u64, Start), StoreError> {
        let (stream, config) = self.commands_consumer(p);
        let recheck = self.take_over_consumer(&stream, config, false).await?;
        Ok((recheck, self.events_start(p).await?))
    }

    /// Where partition `p`'s events are read from: above the floor its
    /// last owner kept, looking up the runs it may have written past it.
    async fn events_start(&self, p: u32) -> Result<Start, StoreError> {
        let events = self.stream("EVENTS").await?;
        let through = events
            .get_info()
            .await
            .map_err(|e| StoreError::Cluster(format!("stream EVENTS: {e}")))?
            .state
            .last_sequence;
        if let Some(kept) = self.read_floor(p).await? {
            let lookup = if kept.clean {
                Lookup::None
            } else {
                Lookup::Window { through }
            };
            return Ok(Start {
                floor: kept.floor,
                lookup,
            });
        }
        // Never kept: new, or read by an earlier version through a durable
        // consumer, which says how far it was acknowledged and handed out.
        let legacy = Layout::event_consumer(p);
        let Ok(info) = events.consumer_info(&legacy).await else {
            return Ok(Start {
                floor: 0,
                lookup: Lookup::Through { through },
            });
        };
        let start = Start {
            floor: info.ack_floor.stream_sequence,
            lookup: Lookup::Through {
                through: info.delivered.stream_sequence,
            },
        };
        // Kept before the consumer goes, so the next owner starts there
        // (not clean: what the consumer handed out may be written).
        self.write_floor(p, start.floor, false).await?;
        if let Err(e) = events.delete_consumer(&legacy).await {
            tracing::debug!(consumer = %legacy, error = %e, "Deleting an earlier version's consumer failed.");
        }
        Ok(start)
    }

    /// Make partition `p`'s commands consumer again from its acknowledged
    /// floor, now: its owner saw a delivery go missing (a pull cut off
    /// while messages were on their way), which would otherwise come back
    /// only after `ack_wait`, behind later ones.
    pub(super) async fn restart_consumer(&self, p: u32) -> Result<u64, StoreError> {
        let (stream, config) = self.commands_consumer(p);
        self.take_over_consumer(&stream, config, true).await
    }

    async fn take_over_consumer(
        &self,
        stream: &str,
        mut config: consumer::pull::Config,
        always: bool,
    ) -> Result<u64, StoreError> {
        let name = config.durable_name.clone().unwrap_or_default();
        let failed = |e: &dyn std::fmt::Display| StoreError::Cluster(format!("consumer {name} on {stream}: {e}"));
        let handle = self.js.get_stream_no_info(stream).await.map_err(|e| failed(&e))?;
        let info = match handle.consumer_info(&name).await {
            Ok(info) => info,
            Err(_) => {
                handle.create_consumer(config).await.map_err(|e| failed(&e))?;
                return Ok(0);
            }
        };
        // Pulls the last owner left waiting would take the next messages
        // to a node that no longer reads them: made again, none is left.
        if !always && info.num_ack_pending == 0 && info.num_waiting == 0 {
            return Ok(0);
        }
        // The commands stream keeps only what is not acknowledged: all of
        // it is the rest.
        let recheck = info.delivered.stream_sequence;
        config.deliver_policy = consumer::DeliverPolicy::All;
        tracing::info!(
            consumer = %name,
            unacknowledged = info.num_ack_pending,
            waiting = info.num_waiting,
            "Making a partition's consumer again from its acknowledged floor."
        );
        handle.delete_consumer(&name).await.map_err(|e| failed(&e))?;
        handle.create_consumer(config).await.map_err(|e| failed(&e))?;
        Ok(recheck)
    }

    /// What `vestibule check` says about the cluster: one line per stream,
    /// an error for each whose settings differ from the wanted ones in a
    /// way a start could not change.
    pub async fn check(&self) -> Result<Vec<String>, StoreError> {
        let account = self
            .js
            .query_account()
            .await
            .map_err(|e| StoreError::Cluster(format!("JetStream is not available: {e}")))?;
        let mut lines = vec![format!(
            "JetStream reachable: {} stream(s), {} consumer(s) in this account",
            account.streams, account.consumers
        )];
        let mut problems = Vec::new();
        for wanted in self.wanted_streams() {
            match self.js.get_stream(&wanted.name).await {
                Ok(mut stream) => {
                    let info = stream
                        .info()
                        .await
                        .map_err(|e| StoreError::Cluster(format!("stream {}: {e}", wanted.name)))?;
                    let have = &info.config;
                    if have.retention != wanted.retention {
                        problems.push(format!(
                            "stream {} has retention {:?}, expected {:?}: a stream's retention cannot change; \
                             delete it or choose another store.stream_prefix",
                            wanted.name, have.retention, wanted.retention
                        ));
                    }
                    let mut changes = Vec::new();
                    if have.num_replicas != wanted.num_replicas {
                        changes.push(format!("replicas {} → {}", have.num_replicas, wanted.num_replicas));
                    }
                    if have.duplicate_window != wanted.duplicate_window {
                        changes.push(format!(
                            "duplicate window {:?} → {:?}",
                            have.duplicate_window, wanted.duplicate_window
                        ));
                    }
                    if have.max_age != wanted.max_age {
                        changes.push(format!("max age {:?} → {:?}", have.max_age, wanted.max_age));
                    }
                    let mut line = format!(
                        "stream {}: exists, {} message(s), {} replica(s)",
                        wanted.name, info.state.messages, have.num_replicas
                    );
                    if !changes.is_empty() {
                        line.push_str(&format!("; the next start updates {}", changes.join(", ")));
                    }
                    lines.push(line);
                }
                Err(e) if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j) if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
                {
                    lines.push(format!(
                        "stream {}: missing; the first start creates it with {} replica(s)",
                        wanted.name, wanted.num_replicas
                    ));
                }
                Err(e) => return Err(StoreError::Cluster(format!("stream {}: {e}", wanted.name))),
            }
        }
        // The streams, and the leases' bucket.
        let needed = self.wanted_streams().len() as i64 + 1;
        if let Some(max) = account.limits.max_streams.filter(|max| *max >= 0 && *max < needed) {
            problems.push(format!(
                "the account may have {max} stream(s); the store needs {needed}"
            ));
        }
        if problems.is_empty() {
            Ok(lines)
        } else {
            Err(StoreError::Cluster(problems.join("; ")))
        }
    }
}
